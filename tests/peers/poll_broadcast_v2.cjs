// N socket.io-client v2 (Engine.IO v3) polling-only clients receiving broadcasts (issue 14).
//
//   node poll_broadcast_v2.cjs port=PORT clients=N [b64=1]
//
// b64=1 sets forceBase64. On Node the client asks with b64=1 either way
// (xmlhttprequest-ssl has no responseType, so no binary payloads). Each client emits
// "ready" once connected, records every "pre", "msg" and "bin" event in order
// until "end", then the driver prints {"event":"client","i":..,"got":[...]}
// per client and "done". Server side: tests/interop/test_polling_broadcast.py.
"use strict";

const io = require("socket.io-client-v2");

async function main() {
  const { deadline, exit, kind, out, parseArgs } = await import("./lib.mjs");
  const args = parseArgs();
  const port = Number(args.port);
  const n = Number(args.clients || 3);
  deadline(Number(args.timeout_ms || 20000));
  const show = (v) => {
    if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
      const b = Buffer.from(v instanceof ArrayBuffer ? new Uint8Array(v) : v);
      return { kind: kind(v), hex: b.toString("hex") };
    }
    return v;
  };
  const sockets = [];
  const done = [];
  for (let i = 0; i < n; i++) {
    const socket = io(`http://127.0.0.1:${port}`, {
      transports: ["polling"], upgrade: false, forceNew: true, reconnection: false, forceBase64: args.b64 === "1",
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
    for (const s of sockets) s.close();
    out("done");
    exit(0);
  } catch (err) {
    out("fail", { error: String(err) });
    exit(1);
  }
}

main();
