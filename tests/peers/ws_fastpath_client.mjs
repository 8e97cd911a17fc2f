// Clients that receive a numbered stream of broadcasts (the WebSocket fast path, issue 14).
//
//   node ws_fastpath_client.mjs port=PORT [client=v4|v2] [mode=websocket|upgrade] [clients=3]
//                               [deflate=1] [timeout_ms=20000]
//
// Each client connects (socket.io-client v4, or v2 for Engine.IO v3), then
// emits "go" with its index and the transport it is on. The server
// broadcasts `msg` (seq, payload) and finally `end` (count). Every client
// checks it got seq 0..count-1 once each, in order, with the payload the
// server derives from seq: seq % 5 == 3 carries a 10 kB Buffer of byte
// seq % 256, seq % 5 == 4 a 3,000-char string of "abc" repeated, the rest
// the string "m<seq>". Prints "client" per client ({index, count, transport,
// upgraded, deflate}), then "done" (exit 0), or "fail" (exit 1) / "timeout" (exit 2).
import { createRequire } from "node:module";
import { deadline, exit, out, parseArgs } from "./lib.mjs";

const require = createRequire(import.meta.url);
const args = parseArgs();
const port = Number(args.port);
const version = args.client || "v4";
const mode = args.mode || "websocket";
const n = Number(args.clients || 3);
const url = `http://127.0.0.1:${port}`;
const io = version === "v2" ? require("socket.io-client-v2") : require("socket.io-client").io;

const states = [];
deadline(Number(args.timeout_ms || 20000), () => ({ states: states.map((s) => ({ next: s.next, transport: s.transport() })) }));

function expected(seq) {
  if (seq % 5 === 3) return Buffer.alloc(10000, seq % 256);
  if (seq % 5 === 4) return "abc".repeat(1000);
  return `m${seq}`;
}

function same(a, b) {
  if (Buffer.isBuffer(b)) {
    const buf = Buffer.isBuffer(a) ? a : a instanceof ArrayBuffer ? Buffer.from(a) : null;
    return buf !== null && buf.equals(b);
  }
  return a === b;
}

function run(index) {
  const opts = {
    forceNew: true,
    reconnection: false,
    transports: mode === "upgrade" ? ["polling", "websocket"] : ["websocket"],
  };
  if (args.deflate === "1") opts.perMessageDeflate = { threshold: 0 };
  const socket = io(url, opts);
  const engine = () => socket.io.engine;
  const state = {
    next: 0,
    upgraded: false,
    transport: () => engine()?.transport?.name,
  };
  states.push(state);
  return new Promise((resolve, reject) => {
    socket.on("connect", () => {
      engine().on("upgrade", () => { state.upgraded = true; });
      socket.emit("go", index, state.transport());
    });
    socket.on("connect_error", (e) => reject(new Error(`connect_error ${e?.message ?? e}`)));
    socket.on("msg", (seq, payload) => {
      if (seq !== state.next) return reject(new Error(`client ${index}: got seq ${seq}, expected ${state.next}`));
      if (!same(payload, expected(seq))) {
        return reject(new Error(`client ${index}: wrong payload for seq ${seq}: ${String(payload).slice(0, 40)}`));
      }
      state.next += 1;
    });
    socket.on("end", (count) => {
      if (count !== state.next) return reject(new Error(`client ${index}: end(${count}) after ${state.next} messages`));
      const ws = engine().transport?.ws;
      const extensions = ws && ws._extensions ? Object.keys(ws._extensions) : [];
      out("client", { index, count, transport: state.transport(), upgraded: state.upgraded,
                      deflate: extensions.includes("permessage-deflate") });
      socket.close();
      resolve();
    });
  });
}

try {
  await Promise.all(Array.from({ length: n }, (_, i) => run(i)));
  out("done");
  exit(0);
} catch (e) {
  out("fail", { error: String(e?.stack ?? e) });
  exit(1);
}
