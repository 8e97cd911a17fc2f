// A Node side for the Redis cluster tests: socket.io 4.8 servers with
// @socket.io/redis-adapter 8.3 (classic createAdapter), socket.io-client
// clients and an @socket.io/redis-emitter, all in one process driven over a
// TCP control port (one JSON request per line -> one JSON answer per line).
//
//   node node_redis_peer.mjs redis=redis://127.0.0.1:6379/0 [deadline_ms=600000]
// prints {"event":"ready","port":N}; then a test connects to 127.0.0.1:N.
//
// Binary travels as {"$bin": hex} both ways. Ops: see `ops` below.
import net from "node:net";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { parseArgs, out, exit, toJSON, deadline } from "./lib.mjs";

const require = createRequire(import.meta.url);
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { Emitter } = require("@socket.io/redis-emitter");
const { io: ioc } = require("socket.io-client");
const { createClient } = require("redis");

const args = parseArgs();
deadline(Number(args.deadline_ms || 600000));

function fromJSON(v) {
  if (Array.isArray(v)) return v.map(fromJSON);
  if (v && typeof v === "object") {
    if (typeof v.$bin === "string" && Object.keys(v).length === 1) return Buffer.from(v.$bin, "hex");
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = fromJSON(x);
    return o;
  }
  return v;
}

const servers = new Map(); // name -> {io, http, pub, sub, events}
const clients = new Map(); // name -> {socket, events, disconnects}
let redisForEmitter = null;

async function redisPair() {
  const pub = createClient({ url: args.redis });
  const sub = pub.duplicate();
  pub.on("error", () => {});
  sub.on("error", () => {});
  await Promise.all([pub.connect(), sub.connect()]);
  return [pub, sub];
}

function operator(io, m) {
  let op = io.of(m.nsp || "/");
  if (m.rooms && m.rooms.length) op = op.to(m.rooms);
  if (m.except && m.except.length) op = op.except(m.except);
  const f = m.flags || {};
  if (f.volatile) op = op.volatile;
  if (f.compress === false) op = op.compress(false);
  if (f.local) op = op.local;
  if (m.timeout_ms !== undefined) op = op.timeout(m.timeout_ms);
  return op;
}

function describeSocket(s) {
  return { id: s.id, rooms: [...s.rooms], data: s.data, handshake: s.handshake };
}

const ops = {
  async start_server(m) {
    const [pub, sub] = await redisPair();
    const io = new Server({ cors: { origin: "*" } });
    io.adapter(createAdapter(pub, sub, {
      key: m.key || "socket.io",
      requestsTimeout: m.requests_timeout_ms || 5000,
      publishOnSpecificResponseChannel: !!m.specific,
    }));
    const events = [];
    const setup = (nsp) => {
      nsp.on("connection", (socket) => {
        const auth = socket.handshake.auth || {};
        if (auth.rooms) socket.join(auth.rooms);
        if (auth.data) socket.data = auth.data;
      });
      nsp.on("ping", (...a) => {
        const cb = typeof a[a.length - 1] === "function" ? a.pop() : null;
        events.push({ nsp: nsp.name, ev: "ping", args: toJSON(a) });
        if (cb) cb(`node:${JSON.stringify(a[0])}`);
      });
      nsp.on("note", (...a) => events.push({ nsp: nsp.name, ev: "note", args: toJSON(a) }));
    };
    for (const name of m.namespaces || ["/"]) {
      setup(io.of(name));
      io.of(name).adapter; // creates the adapter (and its subscriptions)
    }
    const http = createServer();
    io.attach(http);
    await new Promise((r) => http.listen(0, "127.0.0.1", r));
    servers.set(m.name, { io, http, pub, sub, events });
    // wait until the subscriptions are in place
    await new Promise((r) => setTimeout(r, 50));
    return { port: http.address().port };
  },
  async stop_server(m) {
    const s = servers.get(m.name);
    servers.delete(m.name);
    s.io.close();
    await new Promise((r) => setTimeout(r, 20));
    await Promise.allSettled([s.pub.quit(), s.sub.quit()]);
    return {};
  },
  async server_events(m) {
    return servers.get(m.name).events;
  },
  async emit(m) {
    operator(servers.get(m.name).io, m).emit(m.event, ...fromJSON(m.args || []));
    return {};
  },
  async emit_ack(m) {
    const op = operator(servers.get(m.name).io, m);
    return await new Promise((resolve) => {
      op.emit(m.event, ...fromJSON(m.args || []), (err, responses) => {
        resolve({ error: err ? String(err.message || err) : null, responses: toJSON(responses) });
      });
    });
  },
  async fetch(m) {
    const sockets = await operator(servers.get(m.name).io, m).fetchSockets();
    return sockets.map(describeSocket);
  },
  async remote(m) {
    // act on one socket fetched from the whole cluster
    const sockets = await servers.get(m.name).io.of(m.nsp || "/").fetchSockets();
    const s = sockets.find((x) => x.id === m.sid);
    if (!s) throw new Error(`no socket ${m.sid}`);
    switch (m.action) {
      case "emit": s.emit(m.event, ...fromJSON(m.args || [])); return {};
      case "emit_ack": {
        const r = await s.timeout(m.timeout_ms || 2000).emitWithAck(m.event, ...fromJSON(m.args || []));
        return { response: toJSON(r) };
      }
      case "join": s.join(m.room); return {};
      case "leave": s.leave(m.room); return {};
      case "disconnect": s.disconnect(!!m.close); return {};
    }
    throw new Error(`unknown action ${m.action}`);
  },
  async sockets_join(m) { operator(servers.get(m.name).io, m).socketsJoin(m.room); return {}; },
  async sockets_leave(m) { operator(servers.get(m.name).io, m).socketsLeave(m.room); return {}; },
  async disconnect_sockets(m) { operator(servers.get(m.name).io, m).disconnectSockets(!!m.close); return {}; },
  async sse(m) {
    servers.get(m.name).io.of(m.nsp || "/").serverSideEmit(m.event, ...fromJSON(m.args || []));
    return {};
  },
  async sse_ack(m) {
    const nsp = servers.get(m.name).io.of(m.nsp || "/");
    return await new Promise((resolve) => {
      nsp.serverSideEmit(m.event, ...fromJSON(m.args || []), (err, responses) => {
        resolve({ error: err ? String(err.message || err) : null, responses: toJSON(responses) });
      });
    });
  },
  async all_rooms(m) {
    return [...(await servers.get(m.name).io.of(m.nsp || "/").adapter.allRooms())];
  },
  async server_count(m) {
    return await servers.get(m.name).io.of(m.nsp || "/").adapter.serverCount();
  },
  async local_sockets(m) {
    const nsp = servers.get(m.name).io.of(m.nsp || "/");
    return [...nsp.sockets.values()].map((s) => ({ id: s.id, rooms: [...s.rooms] }));
  },
  async client_connect(m) {
    const socket = ioc(`http://127.0.0.1:${m.port}${m.nsp || "/"}`, {
      transports: m.transports || ["websocket"], reconnection: false, forceNew: true,
      auth: m.auth || {}, query: m.query || {},
    });
    const c = { socket, events: [], disconnects: [] };
    clients.set(m.client, c);
    socket.onAny((ev, ...a) => {
      const cb = typeof a[a.length - 1] === "function" ? a.pop() : null;
      c.events.push({ ev, args: toJSON(a), kinds: a.map((x) => (Buffer.isBuffer(x) ? "Buffer" : typeof x)) });
      if (cb && !m.noack) cb(a.length ? a[0] : m.client);
    });
    socket.on("disconnect", (reason) => c.disconnects.push(reason));
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", (e) => reject(new Error(`connect_error ${e.message}`)));
      setTimeout(() => reject(new Error("connect timeout")), 5000);
    });
    return { id: socket.id };
  },
  async client_events(m) {
    const c = clients.get(m.client);
    const deadlineAt = Date.now() + (m.timeout_ms || 0);
    while (c.events.length < (m.count || 0) && Date.now() < deadlineAt) {
      await new Promise((r) => setTimeout(r, 5));
    }
    const events = c.events;
    if (m.clear) c.events = [];
    return { events, disconnects: c.disconnects, connected: c.socket.connected };
  },
  async client_close(m) {
    const c = clients.get(m.client);
    if (c) c.socket.disconnect();
    clients.delete(m.client);
    return {};
  },
  async emitter(m) {
    if (!redisForEmitter) {
      redisForEmitter = createClient({ url: args.redis });
      redisForEmitter.on("error", () => {});
      await redisForEmitter.connect();
    }
    let e = new Emitter(redisForEmitter, { key: m.key || "socket.io" });
    if (m.nsp && m.nsp !== "/") e = e.of(m.nsp);
    let op = e;
    if (m.rooms && m.rooms.length) op = op.to(m.rooms);
    if (m.except && m.except.length) op = op.except(m.except);
    if (m.flags && m.flags.volatile) op = op.volatile;
    if (m.flags && m.flags.compress === false) op = op.compress(false);
    switch (m.action) {
      case "emit": op.emit(m.event, ...fromJSON(m.args || [])); break;
      case "join": op.socketsJoin(m.room); break;
      case "leave": op.socketsLeave(m.room); break;
      case "disconnect": op.disconnectSockets(!!m.close); break;
      case "sse": e.serverSideEmit(m.event, ...fromJSON(m.args || [])); break;
      default: throw new Error(`unknown emitter action ${m.action}`);
    }
    return {};
  },
  async quit() {
    setTimeout(() => exit(0), 10);
    return {};
  },
};

const control = net.createServer((conn) => {
  let buf = "";
  conn.on("data", (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.trim()) continue;
      const m = JSON.parse(line);
      Promise.resolve()
        .then(() => ops[m.op](m))
        .then((result) => conn.write(JSON.stringify({ id: m.id, ok: true, result: result ?? null }) + "\n"))
        .catch((err) => conn.write(JSON.stringify({ id: m.id, ok: false, error: String(err && err.stack || err) }) + "\n"));
    }
  });
  conn.on("error", () => {});
});
control.listen(0, "127.0.0.1", () => out("ready", { port: control.address().port }));
process.stdin.on("end", () => exit(0)); // the test went away
process.stdin.resume();
