// socket.io-client v4 (and Node's HTTP keep-alive agent) against a fastsio
// server running with N workers (tests/interop/workers_app.py), one scenario per run.
//
//   node workers_clients.mjs scenario=NAME port=PORT [mode=websocket|polling|upgrade] [n=COUNT]
//
// Every answer of the app carries the pid of the worker that served it, so the
// test can tell which worker served which client. JSON lines out; "done" at the end.
import http from "node:http";
import { io } from "socket.io-client";
import { deadline, exit, out, parseArgs, sleep, transportsFor } from "./lib.mjs";

const args = parseArgs();
const port = Number(args.port);
const mode = args.mode ?? "websocket";
const n = Number(args.n ?? 20);
const url = `http://127.0.0.1:${port}`;
const sockets = [];
const state = () => ({
  connected: sockets.filter((s) => s.connected).length, total: sockets.length,
  stuck: sockets.filter((s) => !s.connected).map((s) => ({ sid: s.io.engine?.id ?? null,
    transport: s.io.engine?.transport?.name ?? null, readyState: s.io.engine?.readyState ?? null })),
});
deadline(Number(args.timeout_ms ?? 30000), state);

function client(name, extra = {}) {
  const s = io(url, { ...transportsFor(mode), forceNew: true, reconnection: false, auth: { name }, ...extra });
  sockets.push(s);
  return s;
}

function connected(socket, ms = 15000) {
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connect within ${ms} ms`)), ms);
    socket.once("connect", () => { clearTimeout(timer); resolve(); });
    socket.once("connect_error", (err) => { clearTimeout(timer); reject(err); });
  });
}

const ack = (s, ev, ...a) => s.timeout(15000).emitWithAck(ev, ...a);

async function until(predicate, ms, what) {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function settle(s) {
  const engine = s.io.engine;
  if (mode === "upgrade" && engine.transport.name !== "websocket") {
    await new Promise((resolve) => engine.once("upgrade", resolve));
  }
  return engine.transport.name;
}

/** n clients, each joining the rooms `rooms(i)`; returns them with their pids. */
async function many(rooms = () => []) {
  const list = [];
  for (let i = 0; i < n; i++) list.push(client(`c${i}`, { auth: { name: `c${i}`, rooms: rooms(i) } }));
  await Promise.all(list.map((s) => connected(s)));
  const pids = await Promise.all(list.map((s) => ack(s, "pid")));
  return { list, pids };
}

// a raw Engine.IO request over `agent`; resolves with status, body and the local port used
function request(agent, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, agent,
      headers: body !== undefined ? { "content-type": "text/plain;charset=UTF-8" } : {} }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString(),
        localPort: req.socket?.localPort ?? res.socket?.localPort }));
    });
    req.setTimeout(10000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const scenarios = {
  // Many clients; each asks three times which worker serves it.
  async spread() {
    const { list, pids } = await many();
    const again = [];
    for (let r = 0; r < 2; r++) again.push(await Promise.all(list.map((s) => ack(s, "pid"))));
    const transports = await Promise.all(list.map((s) => settle(s)));
    const after = await Promise.all(list.map((s) => ack(s, "pid")));
    out("clients", { pids, again, after, transports });
    list.forEach((s) => s.disconnect());
  },

  // Sessions opened on fresh connections (so they spread over the workers), then
  // served one after another over ONE keep-alive connection of Node's agent.
  async keepalive() {
    const sids = [];
    for (let i = 0; i < n; i++) {
      const r = await request(false, "GET", "/socket.io/?EIO=4&transport=polling");
      sids.push(JSON.parse(r.body.slice(1)).sid);
    }
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const q = (sid) => `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    const results = [];
    for (let round = 0; round < 2; round++) {
      for (const sid of sids) {
        const steps = [];
        if (round === 0) {
          steps.push(await request(agent, "POST", q(sid), "40"));
          steps.push(await request(agent, "GET", q(sid)));
        }
        steps.push(await request(agent, "POST", q(sid), `42${round}["pid"]`));
        steps.push(await request(agent, "GET", q(sid)));
        results.push({ sid, round, steps });
      }
    }
    out("keepalive", { results });
    for (const sid of sids) await request(agent, "POST", q(sid), "1");
    agent.destroy();
  },

  // which worker serves each client, and how many servers each worker's adapter counts
  async counts() {
    const { list, pids } = await many();
    const counts = await Promise.all(list.map((s) => ack(s, "count")));
    out("counts", { pids, counts });
    list.forEach((s) => s.disconnect());
  },

  // A broadcast from one client reaches every client on every worker exactly once.
  async broadcast() {
    const { list, pids } = await many();
    const got = list.map(() => []);
    list.forEach((s, i) => s.on("m", (...a) => got[i].push(a)));
    const senders = [0, n - 1];
    const from = [];
    for (const k of senders) from.push(await ack(list[k], "bcast", { payload: `from-${k}` }));
    await until(() => got.every((g) => g.length >= senders.length), 10000, "every broadcast");
    await sleep(300);  // a duplicate would arrive by now
    out("broadcast", { pids, from, got });
    list.forEach((s) => s.disconnect());
  },

  // rooms and except rooms across workers
  async rooms() {
    const { list, pids } = await many((i) => [i % 2 ? "odd" : "even", ...(i % 3 === 0 ? ["three"] : [])]);
    const got = list.map(() => []);
    list.forEach((s, i) => s.on("m", (...a) => got[i].push(a[0])));
    await ack(list[0], "bcast", { to: ["odd"], payload: "odd" });
    await ack(list[1], "bcast", { to: ["even"], except: ["three"], payload: "even-not-three" });
    await ack(list[2], "bcast", { except: ["odd"], payload: "not-odd" });
    await ack(list[n - 1], "bcast", { to: ["three", "odd"], payload: "three-or-odd" });
    await sleep(800);
    out("rooms", { pids, got });
    list.forEach((s) => s.disconnect());
  },

  // broadcast with acks, fetch_sockets with data, server_count, server_side_emit with acks
  async cluster() {
    const { list, pids } = await many((i) => [`r${i % 3}`]);
    list.forEach((s, i) => s.on("q", (cb) => cb(`c${i}`)));
    const acks = await ack(list[0], "bcast_ack");
    const fetched = await ack(list[n - 1], "fetch");
    const count = await ack(list[1], "count");
    const sse = await ack(list[2], "sse");
    out("cluster", { pids, acks, fetched, count, sse });
    list.forEach((s) => s.disconnect());
  },

  // disconnect_sockets and sockets_join across workers
  async kick() {
    const { list, pids } = await many((i) => (i % 2 ? ["bye"] : []));
    const reasons = list.map(() => null);
    list.forEach((s, i) => s.on("disconnect", (r) => { reasons[i] = r; }));
    await ack(list[0], "join_all", "everyone");
    const fetched = await ack(list[0], "fetch");
    await ack(list[0], "kick", "bye");
    await until(() => reasons.filter((r, i) => i % 2 === 1).every((r) => r !== null), 10000, "every kicked client");
    await sleep(300);
    out("kick", { pids, reasons, fetched });
    list.forEach((s) => s.disconnect());
  },

  // clients that reconnect by themselves (for the killed worker and SIGTERM tests)
  async resilient() {
    const list = [];
    for (let i = 0; i < n; i++) {
      list.push(client(`c${i}`, { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 300 }));
    }
    await Promise.all(list.map((s) => connected(s)));
    const pids = await Promise.all(list.map((s) => ack(s, "pid")));
    const disconnects = list.map(() => []);
    list.forEach((s, i) => s.on("disconnect", (r) => disconnects[i].push(r)));
    out("ready", { pids });
    // the test acts now (kills a worker, or stops the server); wait for what follows
    const wanted = args.expect ?? "reconnect";
    if (wanted === "reconnect") {
      await until(() => disconnects.some((d) => d.length > 0), 15000, "a disconnect");
      await sleep(200);
      await until(() => list.every((s) => s.connected), 15000, "every client back");
      const later = [];
      for (const s of list) later.push(await ack(s, "pid"));
      out("back", { later, disconnects });
    } else {
      await until(() => disconnects.every((d) => d.length > 0), 15000, "every client told");
      out("stopped", { disconnects });
    }
    list.forEach((s) => s.disconnect());
  },
};

const scenario = scenarios[args.scenario];
if (!scenario) {
  out("fail", { message: `unknown scenario ${args.scenario}` });
  exit(1);
} else {
  scenario().then(
    () => { out("done", { scenario: args.scenario, mode }); exit(0); },
    (err) => { out("fail", { message: String(err?.message ?? err), stack: String(err?.stack ?? ""), ...state() }); exit(1); },
  );
}
