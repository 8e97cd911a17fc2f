// socket.io-client v4 sessions that each end one way, for tests/interop/test_no_cycles.py.
//
//   node gc_clients.mjs port=PORT path=/engine.io/ n=N
//
// For every transport mode (websocket, polling, upgrade) and every close kind, N
// clients join "/" and "/chat" through one Manager, trade one event each way on
// both, then end:
//   client: both sockets disconnect (the manager then closes the engine),
//   server: the server disconnects them ("bye" -> socket.disconnect(true)),
//   engine: the engine is closed under the sockets (a "transport close" for the server).
// Prints {"event": "closed", mode, close} per session and "done"; exit 0.
import { Manager } from "socket.io-client";
import { connected, deadline, exit, once, out, parseArgs, sleep, transportsFor } from "./lib.mjs";

const args = parseArgs();
const url = `http://127.0.0.1:${Number(args.port)}`;
const n = Number(args.n ?? 2);
deadline(Number(args.timeout_ms ?? 20000));

async function session(mode, close) {
  const manager = new Manager(url, { ...transportsFor(mode), path: args.path ?? "/socket.io/", reconnection: false });
  const sockets = [manager.socket("/"), manager.socket("/chat")];
  for (const s of sockets) s.connect();
  await Promise.all(sockets.map((s) => connected(s)));
  if (mode === "upgrade" && manager.engine.transport.name !== "websocket") await once(manager.engine, "upgrade", 10000);
  for (const s of sockets) {
    const echo = once(s, "echo");
    s.emit("hello", 7);
    const [got] = await echo;
    if (got !== 7) throw new Error(`echo ${got}`);
  }
  const engineClosed = once(manager.engine, "close", 10000);
  if (close === "client") {
    for (const s of sockets) s.disconnect();
  } else if (close === "server") {
    sockets[0].emit("bye");
  } else {
    manager.engine.close();
  }
  await engineClosed;
  out("closed", { mode, close });
}

const jobs = [];
for (const mode of ["websocket", "polling", "upgrade"]) {
  for (const close of ["client", "server", "engine"]) {
    for (let i = 0; i < n; i++) jobs.push(session(mode, close));
  }
}
try {
  await Promise.all(jobs);
  // the last requests (a polling close packet is POSTed after "close") leave before the exit
  await sleep(300);
  out("done");
  exit(0);
} catch (err) {
  out("fail", { error: String(err?.stack ?? err) });
  exit(1);
}
