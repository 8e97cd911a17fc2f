// The floor: a bare WebSocket server (the `ws` package) that speaks just
// enough Engine.IO/Socket.IO for the load generator, and answers a bcast by
// framing the message once and writing the same bytes to every client's TCP
// socket n times (corked, so one writev per client per burst). No rooms, no
// packet objects, no heartbeats: what is left is the cost of the writes.
//
//   node floor_app.js --port 3000
"use strict";
const http = require("http");
const { WebSocketServer } = require("ws");

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const port = Number(arg("--port", "3000"));
const host = arg("--host", "127.0.0.1");

function frame(opcode, payload) {
  const n = payload.length;
  let head;
  if (n < 126) {
    head = Buffer.from([0x80 | opcode, n]);
  } else if (n < 65536) {
    head = Buffer.from([0x80 | opcode, 126, n >> 8, n & 255]);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, payload]);
}

const clients = new Set();
let nextSid = 0;

function broadcast(n, bytes) {
  for (const ws of clients) {
    const sock = ws._socket;
    if (!sock || sock.destroyed) continue;
    sock.cork();
    for (let i = 0; i < n; i++) sock.write(bytes);
    sock.uncork();
  }
}

const ACK_RE = /^4([25])(\d+-)?(\d+)(\[.*)$/s;

const server = http.createServer();
const wss = new WebSocketServer({ server, path: "/socket.io/", perMessageDeflate: false });
wss.on("connection", (ws) => {
  const sid = "floor" + nextSid++;
  let pendingBinary = null; // {id, n} waiting for the attachment
  ws.send(`0{"sid":"${sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`);
  ws.on("message", (data, isBinary) => {
    if (isBinary) {
      if (pendingBinary) {
        const { id, n } = pendingBinary;
        pendingBinary = null;
        const bytes = Buffer.concat([
          frame(1, Buffer.from('451-["msg",{"_placeholder":true,"num":0}]')),
          frame(2, data),
        ]);
        broadcast(n, bytes);
        ws.send(`43${id}[]`);
      }
      return;
    }
    const s = data.toString();
    if (s === "40" || s.startsWith("40{")) {
      clients.add(ws);
      ws.send(`40{"sid":"${sid}"}`);
      return;
    }
    const m = ACK_RE.exec(s);
    if (!m) return;
    const [, kind, , id, json] = m;
    const args = JSON.parse(json);
    if (args[0] === "bcast") {
      if (kind === "5") {
        pendingBinary = { id, n: args[1] };
        return;
      }
      broadcast(args[1], frame(1, Buffer.from(`42["msg",${JSON.stringify(args[2])}]`)));
      ws.send(`43${id}[]`);
    } else if (args[0] === "echo") {
      ws.send(`43${id}[${JSON.stringify(args[1])}]`);
    }
  });
  ws.on("close", () => clients.delete(ws));
  ws.on("error", () => clients.delete(ws));
});

server.listen(port, host, () => {
  console.log(`READY floor ws ${require("ws/package.json").version} on ${host}:${port}`);
});
function shutdown() {
  for (const ws of clients) ws.terminate();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
