// N socket.io-client v4 clients (connection state recovery is on by itself
// when the server offers it) for the streams-adapter recovery tests, driven
// by JSON commands on stdin.
//
//   node node_streams_clients.mjs port=PORT [n=1] [rooms=r1,r2] [timeout_ms=60000]
//        [ramp=N] [connect_ms=30000] [delay_ms=50] [delay_max_ms=500]
//
// ramp: the first connects go out in groups of that many, each group once the
// one before is connected (a big N would overflow the server's accept queue);
// connect_ms: how long all may take; delay_ms/delay_max_ms: socket.io-client's
// reconnectionDelay/reconnectionDelayMax (randomizationFactor stays 0.5).
//
// Every client records the integer argument of each "m" event it gets, and
// the offset the server appended. Prints {"event":"connected", n} once all
// are connected. Commands (one JSON line each, answered by a "result" line):
//   {"id": 1, "cmd": "cut", "port": PORT_B}   cut every client's TCP connection;
//                                             each reconnects (with pid/offset) to PORT_B
//        (+ "dead_port": P, "dead_ms": T: the reconnects go to P, where nobody listens, for T ms)
//   {"id": 2, "cmd": "wait", "connects": 2, "ms": 10000}  until every client connected that often
//   {"id": 3, "cmd": "report", "full": true}  what they got ("full": per client)
//   {"id": 4, "cmd": "quit"}
import { io } from "socket.io-client";
import { createInterface } from "node:readline";
import { deadline, exit, out, parseArgs, sleep } from "./lib.mjs";

const args = parseArgs();
const n = Number(args.n ?? 1);
const rooms = args.rooms ? args.rooms.split(",") : [];
deadline(Number(args.timeout_ms ?? 60000));

const ramp = Math.max(1, Number(args.ramp ?? n));
const connectMs = Number(args.connect_ms ?? 30000);
const clients = [];
const connectEnd = Date.now() + connectMs;
for (let i = 0; i < n; i++) {
  if (i > 0 && i % ramp === 0) {
    while (Date.now() < connectEnd && !clients.every((c) => c.connects >= 1)) await sleep(10);
  }
  const socket = io(`http://127.0.0.1:${args.port}`, {
    transports: ["websocket"],
    forceNew: true,
    reconnectionDelay: Number(args.delay_ms ?? 50),
    reconnectionDelayMax: Number(args.delay_max_ms ?? 500),
    auth: { rooms, data: { i } },
  });
  const c = { socket, got: [], offsets: [], connects: 0, recovered: [], ids: [], cutAt: null, attempts: 0, errors: {} };
  socket.io.on("reconnect_attempt", () => { c.attempts++; });
  socket.io.on("reconnect_error", (err) => {
    const key = String(err?.message ?? err).slice(0, 60);
    c.errors[key] = (c.errors[key] ?? 0) + 1;
  });
  socket.on("connect", () => {
    c.connects++;
    c.recovered.push(socket.recovered);
    c.ids.push(socket.id);
    if (c.cutAt !== null) c.backAt = Date.now();
  });
  socket.on("ask", (v, cb) => typeof cb === "function" && cb({ i, v }));
  socket.on("m", (v, offset) => {
    c.got.push(v);
    c.offsets.push(offset ?? null);
  });
  clients.push(c);
}

async function waitConnects(count, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (clients.every((c) => c.connects >= count && c.socket.connected)) return true;
    await sleep(20);
  }
  return false;
}

function report(full, backsWanted = false) {
  let recovered = 0;
  let inOrder = 0;
  let lastBack = 0;
  let firstCut = Infinity;
  for (const c of clients) {
    if (c.recovered[c.recovered.length - 1] === true) recovered++;
    let ok = true;
    for (let i = 1; i < c.got.length; i++) if (c.got[i] !== c.got[i - 1] + 1) ok = false;
    if (ok) inOrder++;
    if (c.backAt) lastBack = Math.max(lastBack, c.backAt);
    if (c.cutAt !== null) firstCut = Math.min(firstCut, c.cutAt);
  }
  const backs = clients.filter((c) => c.backAt && c.cutAt !== null).map((c) => c.backAt - c.cutAt).sort((a, b) => a - b);
  const pct = (q) => (backs.length ? backs[Math.min(backs.length - 1, Math.floor(q * backs.length))] : null);
  const errors = {};
  for (const c of clients) for (const [k, v] of Object.entries(c.errors)) errors[k] = (errors[k] ?? 0) + v;
  const res = {
    n: clients.length,
    back_p50_ms: pct(0.5),
    back_p90_ms: pct(0.9),
    attempts: clients.reduce((a, c) => a + c.attempts, 0),
    errors,
    recovered,
    in_order: inOrder,
    total_got: clients.reduce((a, c) => a + c.got.length, 0),
    back_ms: lastBack && firstCut !== Infinity ? lastBack - firstCut : null,
  };
  res.cut_at = firstCut === Infinity ? null : firstCut;
  res.last_back_at = lastBack || null;
  const cpu = process.cpuUsage();
  res.cpu_ms = Math.round((cpu.user + cpu.system) / 1000);
  if (backsWanted) res.backs = backs;
  if (full) {
    res.clients = clients.map((c) => ({
      ids: c.ids, recovered: c.recovered, connects: c.connects, got: c.got, offsets: c.offsets,
    }));
  } else {
    res.first = clients[0] ? { got: clients[0].got, recovered: clients[0].recovered, ids: clients[0].ids } : null;
    // every client's list of values, compared with the first one's
    res.same_as_first = clients.filter((c) => JSON.stringify(c.got) === JSON.stringify(clients[0].got)).length;
  }
  return res;
}

async function run(c) {
  switch (c.cmd) {
    case "cut": {
      const now = Date.now();
      const target = `http://127.0.0.1:${c.port}`;
      if (c.dead_port && c.dead_ms) {
        // first to a port nobody listens on, so the reconnect comes late
        setTimeout(() => { for (const cl of clients) cl.socket.io.uri = target; }, c.dead_ms);
      }
      for (const cl of clients) {
        cl.cutAt = now;
        cl.socket.io.uri = c.dead_port && c.dead_ms ? `http://127.0.0.1:${c.dead_port}` : target;
        const ws = cl.socket.io.engine?.transport?.ws;
        // the TCP connection goes away under the client: "transport close" on both sides
        ws?._socket?.destroy();
      }
      return {};
    }
    case "wait":
      return { ok: await waitConnects(c.connects ?? 1, c.ms ?? 10000) };
    case "report":
      return report(!!c.full, !!c.backs);
    case "quit":
      for (const cl of clients) cl.socket.disconnect();
      setTimeout(() => exit(0), 10);
      return {};
    default:
      throw new Error(`unknown command ${c.cmd}`);
  }
}

createInterface({ input: process.stdin }).on("line", async (line) => {
  if (!line.trim()) return;
  const c = JSON.parse(line);
  try {
    out("result", { id: c.id, ...(await run(c)) });
  } catch (e) {
    out("result", { id: c.id, error: String(e?.message ?? e) });
  }
});

if (await waitConnects(1, Math.max(1000, connectEnd - Date.now()))) out("connected", { n });
else out("error", { message: "not every client connected" });
