// N socket.io-client v4 polling-only clients receiving broadcasts (issue 14's polling fast path).
//
//   node poll_broadcast.mjs port=PORT clients=N [fetch=1]
//
// fetch=1 polls with engine.io-client's Fetch transport (Node's fetch: sends
// Accept-Encoding gzip and inflates the answer), else the default XHR one
// (no Accept-Encoding). Each client emits "ready" once connected, records
// every "pre", "msg" and "bin" event in order until "end", then the driver prints
// {"event":"client","i":..,"got":[[event, ...args]]} per client and "done"
// (poll_broadcast_lib.mjs, shared with the v2 driver).
// The server side is tests/interop/test_polling_broadcast.py.
import { io } from "socket.io-client";
import { Fetch } from "engine.io-client";
import { deadline, parseArgs } from "./lib.mjs";
import { runBroadcastClients } from "./poll_broadcast_lib.mjs";

const args = parseArgs();
const port = Number(args.port);
const useFetch = args.fetch === "1";
deadline(Number(args.timeout_ms ?? 20000));

await runBroadcastClients(Number(args.clients ?? 3), () => io(`http://127.0.0.1:${port}`, {
  transports: useFetch ? [Fetch] : ["polling"], upgrade: false, forceNew: true, reconnection: false,
}));
