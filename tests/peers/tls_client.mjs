// socket.io-client v4 over TLS (https:// and wss://) against a fastsio server
// listening with ssl=..., trusting the test certificate given as ca=PATH.
//
//   node tls_client.mjs port=PORT ca=PATH [mode=websocket|polling|upgrade] [n=3] [count=50]
//
// Every client connects, checks an ack round trip with text and binary, then
// asks for `count` broadcasts (the server sends them to every client, the
// last one about 200 kB) and records their order. Prints one "client" line
// per client and "done"; exits 1 on a failure, 2 at the deadline.
import { readFileSync } from "node:fs";
import { io } from "socket.io-client";
import { deadline, exit, out, parseArgs, transportsFor } from "./lib.mjs";

const args = parseArgs();
const n = Number(args.n ?? 3);
const count = Number(args.count ?? 50);
const mode = args.mode ?? "websocket";
const ca = readFileSync(args.ca);
deadline(Number(args.timeout_ms ?? 20000));

function client(i) {
  return new Promise((resolve, reject) => {
    const socket = io(`https://127.0.0.1:${args.port}`, {
      ...transportsFor(mode), forceNew: true, reconnection: false, ca,
    });
    const got = [];
    let bigLength = null;
    socket.on("connect_error", (err) => reject(err));
    socket.on("m", (k, big) => {
      got.push(k);
      if (typeof big === "string") bigLength = big.length;
      if (got.length === count) {
        const transport = socket.io.engine.transport.name;
        socket.disconnect();
        resolve({ i, got, big_length: bigLength, transport, secure_seen: socket.secureSeen });
      }
    });
    socket.on("connect", () => {
      socket.timeout(5000).emit("echo", "é✓", Buffer.from([0, 1, 255]), (err, text, bin) => {
        if (err) return reject(err);
        socket.secureSeen = text === "é✓" && Buffer.isBuffer(bin) && bin.equals(Buffer.from([0, 1, 255]));
        socket.emit("ready");
      });
    });
  });
}

try {
  const results = await Promise.all(Array.from({ length: n }, (_, i) => client(i)));
  for (const r of results) out("client", r);
  out("done");
  exit(0);
} catch (err) {
  out("fail", { message: String(err?.message ?? err) });
  exit(1);
}
