// Clients that log every event they get, in order: socket.io-client v4 and,
// with n2 > 0, socket.io-client v2 (Engine.IO v3) side by side.
//
//   node asgi_fanout_clients.mjs port=PORT [n4=N] [n2=N] [mode=websocket|polling] [timeout_ms=MS]
//
// Client i connects with the query idx=i (the server picks its rooms from
// it), then emits "hello" with an ack. Prints {"event":"ready"} once every
// client has its ack. Every "m", "p", "b", "e", "v" event is logged as
// [name, ...args] (binary as {"$bin": hex}); on the server's "end" event each
// client prints {"event":"log", "idx", "version", "id", "log"} and
// disconnects; "done" when all have.
import { createRequire } from "node:module";
import { io as ioV4 } from "socket.io-client";
import { deadline, exit, out, parseArgs, toJSON, transportsFor } from "./lib.mjs";

const require = createRequire(import.meta.url);
const ioV2 = require("socket.io-client-v2");

const args = parseArgs();
const port = Number(args.port);
const n4 = Number(args.n4 ?? 2);
const n2 = Number(args.n2 ?? 0);
const mode = args.mode ?? "websocket";
const states = [];
deadline(Number(args.timeout_ms ?? 30000), () => ({
  states: states.map((s) => ({ idx: s.idx, connected: s.connected, logged: s.log.length })),
}));

const NAMES = ["m", "p", "b", "e", "v"];
const n = n4 + n2;
let ready = 0;
let ended = 0;
for (let idx = 0; idx < n; idx++) {
  const version = idx < n4 ? 4 : 2;
  const url = `http://127.0.0.1:${port}`;
  const socket = version === 4
    ? ioV4(url, { ...transportsFor(mode), forceNew: true, reconnection: false, query: { idx: String(idx) } })
    : ioV2(url, {
      transports: mode === "polling" ? ["polling"] : ["websocket"],
      forceNew: true, reconnection: false, query: { idx: String(idx) },
    });
  const state = { idx, version, connected: false, log: [], id: null };
  states.push(state);
  socket.on("connect", () => {
    state.connected = true;
    state.id = socket.id;
    socket.emit("hello", () => {
      ready += 1;
      if (ready === n) out("ready");
    });
  });
  for (const name of NAMES) {
    socket.on(name, (...values) => state.log.push([name, ...values.map(toJSON)]));
  }
  socket.on("end", () => {
    out("log", { idx, version, id: state.id, log: state.log });
    socket.disconnect();
    ended += 1;
    if (ended === n) {
      out("done");
      exit(0);
    }
  });
  socket.on("connect_error", (err) => { out("fail", { idx, error: String(err) }); exit(1); });
}
