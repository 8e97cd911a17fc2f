// A Node socket.io 4.8 server joined to a cluster by
// @socket.io/redis-streams-adapter, driven by JSON commands on stdin.
//
//   node node_streams_server.mjs port=PORT redis=URL [recovery_ms=60000]
//        [stream=socket.io] [prefix=sio:session:] [max_len=10000] [timeout_ms=60000] [ping_ms=5000] [quiet=true]
//
// Prints {"event":"ready", port, uid} once it listens, then one line per
// happening ("connection", "disconnect", "sse" for a server-side event) and
// one {"event":"result", id, ...} per command. A command is one JSON line:
//   {"id": 1, "cmd": "emit", "rooms": [], "except": [], "ev": "x", "args": [..], "volatile": false}
//   {"id": 2, "cmd": "emit_ack", "rooms": [], "ev": "x", "args": [..], "timeout_ms": 2000}
//   {"id": 3, "cmd": "fetch", "rooms": []}       {"id": 4, "cmd": "count"}
//   {"id": 5, "cmd": "join", "rooms": [], "join": ["r"]}   ("leave" alike)
//   {"id": 6, "cmd": "disconnect", "rooms": [], "close": false}
//   {"id": 7, "cmd": "sse", "ev": "x", "args": [..], "ack": true}
//   {"id": 8, "cmd": "tick", "rooms": ["r1"], "ms": 20}  emit "m" <counter> every ms; "untick" stops
//   {"id": 9, "cmd": "quit"}
// Sockets join the rooms listed in their auth ("rooms") on a fresh connection
// and answer "ping" acks with "pong"; a server-side event "q" is answered
// with ["answer", uid].
import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";
import { deadline, exit, out, parseArgs, toJSON } from "./lib.mjs";

const args = parseArgs();
const timeoutMs = Number(args.timeout_ms ?? 60000);
deadline(timeoutMs);

const redis = createClient({ url: args.redis });
redis.on("error", () => {});
await redis.connect();

const httpServer = createServer();
const recoveryMs = Number(args.recovery_ms ?? 60000);
const io = new Server(httpServer, {
  adapter: createAdapter(redis, {
    streamName: args.stream ?? "socket.io",
    sessionKeyPrefix: args.prefix ?? "sio:session:",
    maxLen: Number(args.max_len ?? 10000),
  }),
  connectionStateRecovery: recoveryMs > 0 ? { maxDisconnectionDuration: recoveryMs, skipMiddlewares: true } : undefined,
  pingInterval: Number(args.ping_ms ?? 5000),
  pingTimeout: Number(args.ping_ms ?? 5000),
});

io.on("connection", (socket) => {
  if (!socket.recovered) {
    const rooms = socket.handshake.auth?.rooms;
    if (Array.isArray(rooms)) socket.join(rooms);
    if (socket.handshake.auth?.data) socket.data = socket.handshake.auth.data;
  }
  if (args.quiet !== "true") {
    out("connection", { id: socket.id, recovered: socket.recovered, rooms: [...socket.rooms], data: socket.data });
  }
  socket.on("ping", (cb) => typeof cb === "function" && cb("pong"));
  socket.on("disconnect", (reason) => {
    if (args.quiet !== "true") out("disconnect", { id: socket.id, reason });
  });
});

io.on("q", (...a) => {
  const cb = typeof a[a.length - 1] === "function" ? a.pop() : null;
  out("sse", { args: toJSON(a), ack: !!cb });
  if (cb) cb(["answer", io.of("/").adapter.uid]);
});
io.on("noack", (...a) => out("sse", { args: toJSON(a), ack: false }));

const ticks = { sent: 0, timer: null };

function op(c) {
  let o = io;
  if (c.rooms?.length) o = o.to(c.rooms);
  if (c.except?.length) o = o.except(c.except);
  if (c.volatile) o = o.volatile;
  if (c.local) o = o.local;
  return o;
}

function decodeArgs(list) {
  return (list ?? []).map((v) => (v && typeof v === "object" && "$bin" in v ? Buffer.from(v.$bin, "hex") : v));
}

async function run(c) {
  switch (c.cmd) {
    case "emit":
      op(c).emit(c.ev, ...decodeArgs(c.args));
      return {};
    case "emit_ack": {
      const res = await new Promise((resolve) => {
        op(c).timeout(c.timeout_ms ?? 2000).emit(c.ev, ...decodeArgs(c.args), (err, r) => resolve({ err: err ? err.message : null, responses: toJSON(r) }));
      });
      return res;
    }
    case "fetch": {
      const sockets = await op(c).fetchSockets();
      return { sockets: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data, local: !!s.nsp })) };
    }
    case "count":
      return { count: await io.of("/").adapter.serverCount() };
    case "join":
      op(c).socketsJoin(c.join);
      return {};
    case "leave":
      op(c).socketsLeave(c.leave);
      return {};
    case "disconnect":
      op(c).disconnectSockets(!!c.close);
      return {};
    case "sse":
      if (c.ack) {
        return await new Promise((resolve) => {
          io.serverSideEmit(c.ev, ...decodeArgs(c.args), (err, r) => resolve({ err: err ? err.message : null, responses: toJSON(r) }));
        });
      }
      io.serverSideEmit(c.ev, ...decodeArgs(c.args));
      return {};
    case "local_rooms": {
      const sockets = [...io.of("/").sockets.values()];
      return { sockets: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms] })) };
    }
    case "tick": {
      // emit "m" with a counter to c.rooms every c.ms milliseconds (bench/streams_recovery.py)
      ticks.sent = 0;
      clearInterval(ticks.timer);
      ticks.timer = setInterval(() => op(c).emit("m", ticks.sent++), c.ms ?? 20);
      return {};
    }
    case "untick":
      clearInterval(ticks.timer);
      return { sent: ticks.sent };
    case "quit":
      setTimeout(() => exit(0), 10);
      return {};
    default:
      throw new Error(`unknown command ${c.cmd}`);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  if (!line.trim()) return;
  let c;
  try {
    c = JSON.parse(line);
  } catch (e) {
    out("error", { message: `bad command: ${e.message}` });
    return;
  }
  try {
    out("result", { id: c.id, ...(await run(c)) });
  } catch (e) {
    out("result", { id: c.id, error: String(e?.message ?? e) });
  }
});
rl.on("close", () => exit(0));

httpServer.listen(Number(args.port), "127.0.0.1", () => {
  out("ready", { port: Number(args.port), uid: io.of("/").adapter.uid });
});
