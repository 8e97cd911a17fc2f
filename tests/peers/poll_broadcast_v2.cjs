// N socket.io-client v2 (Engine.IO v3) polling-only clients receiving broadcasts (issue 14).
//
//   node poll_broadcast_v2.cjs port=PORT clients=N [b64=1]
//
// b64=1 sets forceBase64. On Node the client asks with b64=1 either way
// (xmlhttprequest-ssl has no responseType, so no binary payloads). Each client emits
// "ready" once connected, records every "pre", "msg" and "bin" event in order
// until "end", then the driver prints {"event":"client","i":..,"got":[...]}
// per client and "done" (poll_broadcast_lib.mjs, shared with the v4 driver).
// Server side: tests/interop/test_polling_broadcast.py.
"use strict";

const io = require("socket.io-client-v2");

async function main() {
  const { deadline, parseArgs } = await import("./lib.mjs");
  const { runBroadcastClients } = await import("./poll_broadcast_lib.mjs");
  const args = parseArgs();
  const port = Number(args.port);
  deadline(Number(args.timeout_ms || 20000));
  await runBroadcastClients(Number(args.clients || 3), () => io(`http://127.0.0.1:${port}`, {
    transports: ["polling"], upgrade: false, forceNew: true, reconnection: false, forceBase64: args.b64 === "1",
  }));
}

main();
