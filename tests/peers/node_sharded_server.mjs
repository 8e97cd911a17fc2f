// A Node socket.io 4.8 server with @socket.io/redis-adapter's createShardedAdapter,
// plus npm socket.io-client clients (to this server or any other), driven over
// stdin: one JSON command per line ({id, cmd, ...}); answers {event:"result", id, ...}
// and reports what clients receive as {event:"recv", name, ev, args}.
//
// node node_sharded_server.mjs url=redis://... port=N mode=dynamic deadline_ms=60000
import { createInterface } from "node:readline";
import { Server } from "socket.io";
import { createShardedAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import { io as ioc } from "socket.io-client";
import { parseArgs, out, toJSON, deadline, exit } from "./lib.mjs";

const args = parseArgs();
deadline(Number(args.deadline_ms || 60000));

function fromJSON(value) {
  if (Array.isArray(value)) return value.map(fromJSON);
  if (value && typeof value === "object") {
    if (typeof value.$bin === "string") return Buffer.from(value.$bin, "hex");
    const obj = {};
    for (const [k, v] of Object.entries(value)) obj[k] = fromJSON(v);
    return obj;
  }
  return value;
}

const pub = createClient({ url: args.url, socket: { reconnectStrategy: (n) => Math.min(50 * 2 ** n, 1000) } });
pub.on("error", (e) => out("redis_error", { message: String(e.message || e) }));
const sub = pub.duplicate();
sub.on("error", () => {});
await Promise.all([pub.connect(), sub.connect()]);

const io = new Server({
  adapter: createShardedAdapter(pub, sub, { subscriptionMode: args.mode || "dynamic" }),
});

io.on("connection", (socket) => {
  const auth = socket.handshake.auth || {};
  if (Array.isArray(auth.rooms)) socket.join(auth.rooms);
  socket.data = { name: auth.name || null, server: "node" };
});
io.on("ask", (...a) => {
  const cb = typeof a[a.length - 1] === "function" ? a.pop() : null;
  out("server_event", { ev: "ask", args: toJSON(a) });
  if (cb && !args.silent) cb("node:" + JSON.stringify(toJSON(a[0])));
});
io.on("note", (...a) => out("server_event", { ev: "note", args: toJSON(a) }));

const clients = new Map();

function op(rooms, except) {
  let target = io;
  if (rooms && rooms.length) target = target.to(rooms);
  if (except && except.length) target = target.except(except);
  return target;
}

const handlers = {
  async client({ name, url, rooms }) {
    const socket = ioc(url, { transports: ["websocket"], auth: { rooms: rooms || [], name }, reconnection: false });
    socket.onAny((ev, ...a) => {
      const cb = typeof a[a.length - 1] === "function" ? a.pop() : null;
      out("recv", { name, ev, args: toJSON(a) });
      if (cb) cb(`${name}:${ev}`);
    });
    socket.on("disconnect", (reason) => out("client_disconnect", { name, reason }));
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    clients.set(name, socket);
    return { sid: socket.id };
  },
  async close_client({ name }) {
    clients.get(name)?.disconnect();
    return {};
  },
  async emit({ rooms, except, flags = {}, ev, args: a = [] }) {
    let target = op(rooms, except);
    if (flags.volatile) target = target.volatile;
    if (flags.compress === false) target = target.compress(false);
    if (flags.local) target = target.local;
    target.emit(ev, ...fromJSON(a));
    return {};
  },
  async emit_ack({ rooms, except, ms, ev, args: a = [] }) {
    try {
      const responses = await op(rooms, except).timeout(ms).emitWithAck(ev, ...fromJSON(a));
      return { responses: toJSON(responses) };
    } catch (e) {
      return { error: e.message, responses: toJSON(e.responses || null) };
    }
  },
  async fetch({ rooms, except }) {
    const sockets = await op(rooms, except).fetchSockets();
    return { sockets: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms].sort(), data: toJSON(s.data),
      address: s.handshake.address, time: s.handshake.time, issued: s.handshake.issued })) };
  },
  async remote_emit({ sid, ev, args: a = [] }) {
    const sockets = await io.fetchSockets();
    const s = sockets.find((x) => x.id === sid);
    if (!s) return { error: "not found" };
    s.emit(ev, ...fromJSON(a));
    return {};
  },
  async join({ rooms, except, room }) {
    op(rooms, except).socketsJoin(room);
    return {};
  },
  async leave({ rooms, except, room }) {
    op(rooms, except).socketsLeave(room);
    return {};
  },
  async disconnect({ rooms, except, close }) {
    op(rooms, except).disconnectSockets(Boolean(close));
    return {};
  },
  async sse({ ev, args: a = [] }) {
    io.serverSideEmit(ev, ...fromJSON(a));
    return {};
  },
  async sse_ack({ ev, args: a = [] }) {
    try {
      const responses = await io.serverSideEmitWithAck(ev, ...fromJSON(a));
      return { responses: toJSON(responses) };
    } catch (e) {
      return { error: e.message };
    }
  },
  async server_count() {
    return { count: await io.of("/").adapter.serverCount() };
  },
  async local_rooms() {
    return { rooms: [...io.of("/").adapter.rooms.keys()].sort() };
  },
  async exit() {
    for (const s of clients.values()) s.disconnect();
    io.close();
    setTimeout(() => exit(0), 50);
    return {};
  },
};

const rl = createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    return;
  }
  const fn = handlers[cmd.cmd];
  if (!fn) {
    out("result", { id: cmd.id, error: `unknown command ${cmd.cmd}` });
    return;
  }
  try {
    out("result", { id: cmd.id, ...(await fn(cmd)) });
  } catch (e) {
    out("result", { id: cmd.id, error: String(e && e.message ? e.message : e) });
  }
});
rl.on("close", () => exit(0));

io.listen(Number(args.port));
out("ready", { port: Number(args.port) });
