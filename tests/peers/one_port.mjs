// socket.io-client v4 and plain HTTP (fetch) against one port: a fastsio Server
// hosting an ASGI app (tests/interop/test_asgi_host.py).
//
//   node one_port.mjs port=PORT [mode=websocket|polling|upgrade] [clients=N]
//
// Connects N clients, checks an acked echo on each, fetches /hello from the
// ASGI app, asks the app (GET /emit?msg=...) to emit "news" to every client and
// waits until each got it. Prints JSON lines, ends with "done".
import { io } from "socket.io-client";
import { deadline, exit, out, parseArgs, transportsFor } from "./lib.mjs";

const args = parseArgs();
const port = Number(args.port);
const mode = args.mode ?? "websocket";
const count = Number(args.clients ?? 3);
const base = `http://127.0.0.1:${port}`;
deadline(Number(args.timeout_ms ?? 20000));

function connected(socket, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no connect")), ms);
    socket.once("connect", () => { clearTimeout(timer); resolve(); });
    socket.once("connect_error", (err) => { clearTimeout(timer); reject(err); });
  });
}

async function main() {
  const sockets = [];
  const news = [];
  for (let i = 0; i < count; i++) {
    const s = io(base, { ...transportsFor(mode), forceNew: true, reconnection: false });
    news.push(new Promise((resolve) => s.once("news", resolve)));
    sockets.push(s);
  }
  await Promise.all(sockets.map((s) => connected(s)));
  const echoes = await Promise.all(sockets.map((s, i) => s.timeout(10000).emitWithAck("echo", i, "x")));
  out("echo", { answers: echoes, transport: sockets[0].io.engine.transport.name });
  const hello = await fetch(`${base}/hello`);
  out("hello", { status: hello.status, body: await hello.json() });
  const emitted = await fetch(`${base}/emit?msg=${encodeURIComponent("from http")}`);
  out("emit", { status: emitted.status, body: await emitted.json() });
  out("news", { got: await Promise.all(news) });
  const missing = await fetch(`${base}/nothing-here`);
  out("missing", { status: missing.status });
  for (const s of sockets) s.disconnect();
}

main().then(
  () => { out("done"); exit(0); },
  (err) => { out("fail", { message: String(err && err.stack || err) }); exit(1); },
);
