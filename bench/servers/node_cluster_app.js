// Node socket.io 4.8 on N cores, the way its docs put it: the cluster module,
// @socket.io/sticky in the primary (routes each connection to a worker by the
// sid it carries) and @socket.io/cluster-adapter between the workers (through
// the primary). Same app as node_app.js.
//
//   node node_cluster_app.js --port 3000 --workers 2
"use strict";
const cluster = require("cluster");
const http = require("http");
const { Server } = require("socket.io");
const { setupMaster, setupWorker } = require("@socket.io/sticky");
const { createAdapter, setupPrimary } = require("@socket.io/cluster-adapter");

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const port = Number(arg("--port", "3000"));
const host = arg("--host", "127.0.0.1");
const workers = Number(arg("--workers", "2"));

if (cluster.isPrimary) {
  const httpServer = http.createServer();
  // sticky passes the first bytes of each connection as a Buffer: needs the advanced IPC
  cluster.setupPrimary({ serialization: "advanced" });
  setupMaster(httpServer, { loadBalancingMethod: "least-connection" });
  setupPrimary();
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on("message", (m) => {
      if (m === "ready" && ++ready === workers) {
        httpServer.listen(port, host, () => {
          console.log(`READY node socket.io ${require("socket.io/package.json").version} cluster x${workers} on ${host}:${port}`);
        });
      }
    });
  }
  const shutdown = () => {
    for (const w of Object.values(cluster.workers)) w.kill("SIGTERM");
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
} else {
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  io.adapter(createAdapter());
  setupWorker(io);
  io.on("connection", (socket) => {
    socket.join("all");
    socket.on("bcast", (n, payload, ack) => {
      for (let i = 0; i < n; i++) io.to("all").emit("msg", payload);
      if (typeof ack === "function") ack();
    });
    socket.on("echo", (data, ack) => {
      if (typeof ack === "function") ack(data);
    });
  });
  process.send("ready");
  process.on("SIGTERM", () => process.exit(0));
}
