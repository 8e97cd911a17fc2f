// Node socket.io 4.8 with default options, running the benchmark app.
// Issue 14 scenarios (bench.py sets them per scenario): BENCH_DEFLATE=1 sets
// perMessageDeflate {threshold: 0}; BENCH_EIO3=1 sets allowEIO3.
//
//   node node_app.js --port 3000
//
// On connection: join room "all". Event bcast(n, payload): emit "msg" with
// payload to room "all" n times, then ack. Event echo(x): ack x.
"use strict";
const http = require("http");
const { Server } = require("socket.io");

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const port = Number(arg("--port", "3000"));
const host = arg("--host", "127.0.0.1");

const httpServer = http.createServer();
// BENCH_PARSER=msgpack: socket.io-msgpack-parser instead of the default JSON parser.
const options = process.env.BENCH_PARSER === "msgpack" ? { parser: require("socket.io-msgpack-parser") } : {};
if (process.env.BENCH_DEFLATE === "1") options.perMessageDeflate = { threshold: 0 };
if (process.env.BENCH_EIO3 === "1") options.allowEIO3 = true;
const io = new Server(httpServer, options);

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

httpServer.listen(port, host, () => {
  console.log(`READY node socket.io ${require("socket.io/package.json").version} on ${host}:${port}`);
});

function shutdown() {
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
