// Several socket.io-client v4 clients through an nginx load balancer
// (tests/interop/test_scaling_nginx.py, the example of docs/scaling.md).
//
//   node nginx_clients.mjs port=PORT mode=polling|upgrade addrs=127.0.1.1,127.0.2.1,...
//
// Client i connects from local address addrs[i] (nginx's ip_hash keys on the
// client address, so distinct addresses spread the clients over the servers).
// Each client asks which server holds it, client 0 asks its server for a
// broadcast that every client must get, the clients stay connected a while
// (polling: many requests per session, each must reach the same server) and
// ask again. Prints JSON lines, ends with "done" (exit 0), "fail" (exit 1) or
// "timeout" (exit 2).
import http from "node:http";
import { io } from "socket.io-client";
import { connected, deadline, exit, once, out, parseArgs, sleep, transportsFor, until } from "./lib.mjs";

const args = parseArgs();
const mode = args.mode ?? "polling";
const url = `http://127.0.0.1:${Number(args.port)}`;
const addrs = (args.addrs ?? "127.0.0.1").split(",");
const stayMs = Number(args.stay_ms ?? 1500);
const clients = [];
deadline(Number(args.timeout_ms ?? 12000), () => ({
  clients: clients.map((c) => ({ addr: c.addr, id: c.socket.id ?? null, connected: c.socket.connected, errors: c.errors })),
}));

async function whoami(socket) {
  return socket.timeout(5000).emitWithAck("whoami");
}

async function main() {
  for (const addr of addrs) {
    const agent = new http.Agent({ localAddress: addr });
    const socket = io(url, { ...transportsFor(mode), forceNew: true, reconnection: false, agent, localAddress: addr });
    const c = { addr, socket, errors: [], disconnects: [], news: [] };
    socket.on("connect_error", (err) => c.errors.push(String(err?.message ?? err)));
    socket.on("disconnect", (reason) => c.disconnects.push(reason));
    socket.on("news", (v) => c.news.push(v));
    clients.push(c);
  }
  await Promise.all(clients.map((c) => connected(c.socket)));
  if (mode === "upgrade") {
    await Promise.all(clients.map((c) => (c.socket.io.engine.transport.name === "websocket"
      ? null : once(c.socket.io.engine, "upgrade", 8000))));
  }
  for (const c of clients) {
    c.server = await whoami(c.socket);
    out("client", { addr: c.addr, id: c.socket.id, server: c.server, transport: c.socket.io.engine.transport.name });
  }
  const sent = await clients[0].socket.timeout(5000).emitWithAck("broadcast", "hello-all");
  out("broadcast", { from: sent });
  await until(() => clients.every((c) => c.news.length > 0), 5000, "the broadcast on every client");
  await sleep(stayMs);
  for (const c of clients) {
    const again = await whoami(c.socket);
    out("after", {
      addr: c.addr, id: c.socket.id, server: again, connected: c.socket.connected,
      transport: c.socket.io.engine.transport.name, news: c.news, errors: c.errors, disconnects: c.disconnects,
    });
  }
  for (const c of clients) c.socket.disconnect();
  out("done");
  exit(0);
}

main().catch((err) => {
  out("fail", { error: String(err?.stack ?? err), clients: clients.map((c) => ({ addr: c.addr, errors: c.errors, disconnects: c.disconnects })) });
  exit(1);
});
