// Connection state recovery across the workers of a fastsio server (tests/interop/workers_recovery_app.py).
//
//   node workers_recovery.mjs scenario=move|expire|dead port=PORT [mode=websocket|polling]
//
// A receiver in room "r" and one sender on each worker; the senders make their
// workers broadcast ("t", pid, counter) to "r" while the receiver's connection is
// cut (its TCP connection destroyed in websocket mode, io.engine.close() in
// polling mode). move: cut again until the reconnect lands on another worker
// than the one that had the session; expire: the reconnect comes after the
// session expired; dead: the worker that had the session is killed (SIGKILL)
// before the reconnect. JSON lines out; "result" at the end.
import { io } from "socket.io-client";
import { deadline, exit, out, parseArgs, sleep, transportsFor } from "./lib.mjs";

const args = parseArgs();
const port = Number(args.port);
const mode = args.mode ?? "websocket";
const scenario = args.scenario ?? "move";
const url = `http://127.0.0.1:${port}`;
deadline(Number(args.timeout_ms ?? 60000));

const ack = (s, ev, ...a) => s.timeout(10000).emitWithAck(ev, ...a);

async function until(predicate, ms, what) {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function connect(opts) {
  const s = io(url, { ...transportsFor(mode), forceNew: true, ...opts });
  return new Promise((resolve, reject) => {
    s.once("connect", () => resolve(s));
    s.once("connect_error", reject);
  });
}

// one sender on each of the 2 workers (new connections until both are covered)
const senders = new Map();
const extra = [];
for (let i = 0; i < 40 && senders.size < 2; i++) {
  const s = await connect({ reconnection: false, auth: { name: `s${i}` } });
  const pid = await ack(s, "pid");
  if (senders.has(pid)) extra.push(s);
  else senders.set(pid, s);
}
for (const s of extra) s.disconnect();
if (senders.size < 2) throw new Error("the senders did not reach two workers");

const got = [];
const connects = [];
const receiver = io(url, { ...transportsFor(mode), forceNew: true, reconnectionDelay: 100,
  reconnectionDelayMax: 200, auth: { name: "r", rooms: ["r"] } });
receiver.on("t", (pid, k) => got.push([pid, k]));
receiver.on("connect", () => connects.push({ id: receiver.id, recovered: receiver.recovered === true }));
await until(() => connects.length === 1, 10000, "the receiver's connect");
let owner = (await ack(receiver, "state")).pid;
out("start", { senders: [...senders.keys()], receiver: owner, id: receiver.id });

function cut() {
  if (mode === "websocket") receiver.io.engine.transport.ws._socket.destroy();
  else receiver.io.engine.close();
}

async function tickAll(n, ms) {
  for (const s of senders.values()) await ack(s, "tick", { n, ms });
}

const rounds = [];
const expected = () => rounds.reduce((a, r) => a + r.ticks, 0);
for (let round = 0; round < 20; round++) {
  const n = 30;
  await tickAll(n, 10);
  const ticks = n * senders.size;
  await until(() => got.length >= expected() + 4, 5000, "some ticks before the cut");
  const before = connects.length;
  if (scenario === "expire") {
    // the reconnect goes to a port nobody listens on until the session expired
    receiver.io.uri = "http://127.0.0.1:1";
    setTimeout(() => { receiver.io.uri = url; }, Number(args.away_ms ?? 2500));
  }
  const cutAt = Date.now();
  cut();
  if (scenario === "dead") process.kill(owner, "SIGKILL");
  await until(() => connects.length > before && receiver.connected, 20000, "the reconnect");
  const backMs = Date.now() - cutAt;
  const state = await ack(receiver, "state");
  rounds.push({ from: owner, to: state.pid, ...connects[connects.length - 1], state, ticks, back_ms: backMs });
  if (scenario !== "move" || !connects[connects.length - 1].recovered) break;
  // the rest of this round's ticks (the senders' workers go on while the receiver is away)
  await until(() => got.length >= expected(), 10000, "every tick of the round").catch(() => {});
  const moved = state.pid !== owner;
  owner = state.pid;
  if (moved) break;
}
await sleep(200);
out("result", { rounds, got, connects });
receiver.disconnect();
for (const s of senders.values()) s.disconnect();
exit(0);
