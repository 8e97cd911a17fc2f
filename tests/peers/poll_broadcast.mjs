// N socket.io-client v4 polling-only clients receiving broadcasts (issue 14's polling fast path).
//
//   node poll_broadcast.mjs port=PORT clients=N [fetch=1]
//
// fetch=1 polls with engine.io-client's Fetch transport (Node's fetch: sends
// Accept-Encoding gzip and inflates the answer), else the default XHR one
// (no Accept-Encoding). Each client emits "ready" once connected, records
// every "pre", "msg" and "bin" event in order until "end", then the driver prints
// {"event":"client","i":..,"got":[[event, ...args]]} per client and "done".
// The server side is tests/interop/test_polling_broadcast.py.
import { io } from "socket.io-client";
import { Fetch } from "engine.io-client";
import { deadline, exit, kind, out, parseArgs } from "./lib.mjs";

const args = parseArgs();
const port = Number(args.port);
const n = Number(args.clients ?? 3);
const useFetch = args.fetch === "1";
deadline(Number(args.timeout_ms ?? 20000));

function show(v) {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
    const b = Buffer.from(v instanceof ArrayBuffer ? new Uint8Array(v) : v);
    return { kind: kind(v), hex: b.toString("hex") };
  }
  return v;
}

const sockets = [];
const done = [];
for (let i = 0; i < n; i++) {
  const socket = io(`http://127.0.0.1:${port}`, {
    transports: useFetch ? [Fetch] : ["polling"], upgrade: false, forceNew: true, reconnection: false,
  });
  sockets.push(socket);
  const got = [];
  for (const ev of ["pre", "msg", "bin"]) socket.on(ev, (...a) => got.push([ev, ...a.map(show)]));
  done.push(new Promise((resolve, reject) => {
    socket.on("end", () => resolve(got));
    socket.on("connect_error", reject);
    socket.on("disconnect", (reason) => reject(new Error(`disconnected: ${reason}`)));
  }));
  socket.on("connect", () => socket.emit("ready", i, socket.io.engine.transport.name));
}
try {
  const all = await Promise.all(done);
  all.forEach((got, i) => out("client", { i, id: sockets[i].id, got }));
  for (const s of sockets) s.disconnect();
  out("done");
  exit(0);
} catch (err) {
  out("fail", { error: String(err) });
  exit(1);
}
