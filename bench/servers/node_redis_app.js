// Node socket.io 4.8 with @socket.io/redis-adapter 8.3, for the two-servers-on-one-Redis benchmark.
//
//   NODE_PATH=tests/peers/node_modules node node_redis_app.js --port 3000 --redis redis://127.0.0.1:6379/0
//
// On connection: join room "all". Event bcast(n, payload): emit "msg" with
// payload to room "all" n times (to every server of the cluster), then ack.
"use strict";
const http = require("http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const port = Number(arg("--port", "3000"));
const host = arg("--host", "127.0.0.1");

(async () => {
  const pub = createClient({ url: arg("--redis") });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: createAdapter(pub, sub, { key: "bench" }) });
  io.on("connection", (socket) => {
    socket.join("all");
    socket.on("bcast", (n, payload, ack) => {
      for (let i = 0; i < n; i++) io.to("all").emit("msg", payload);
      if (typeof ack === "function") ack();
    });
  });
  httpServer.listen(port, host, () => {
    console.log(`READY node socket.io ${require("socket.io/package.json").version} redis-adapter ` +
      `${require("@socket.io/redis-adapter/package.json").version} on ${host}:${port}`);
  });
  const shutdown = () => {
    io.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
})();
