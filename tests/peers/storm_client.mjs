// Fast clients of a broadcast storm: N socket.io-client v4 sockets that read
// everything, as fast as Node does.
//
//   node storm_client.mjs port=PORT n=N [mode=websocket|polling] [timeout_ms=MS]
//
// Each socket joins by emitting "join" (the server puts it in the room), then
// counts the "m" events (argument: a sequence number) and whether they came in
// order. Prints {"event":"ready"} once every socket joined, and on the
// server's "end" event {"event":"got", "id", "count", "in_order", "volatile"}
// per socket, then "done".
import { io } from "socket.io-client";
import { deadline, exit, out, transportsFor } from "./lib.mjs";
import { parseArgs } from "./lib.mjs";

const args = parseArgs();
const port = Number(args.port);
const n = Number(args.n ?? 2);
const mode = args.mode ?? "websocket";
deadline(Number(args.timeout_ms ?? 30000));

const results = [];
let joined = 0;
let ended = 0;
for (let i = 0; i < n; i++) {
  const socket = io(`http://127.0.0.1:${port}`, { ...transportsFor(mode), forceNew: true, reconnection: false });
  const state = { id: null, count: 0, next: 0, in_order: true, volatile: 0 };
  socket.on("connect", () => {
    state.id = socket.id;
    socket.emit("join", () => {
      joined += 1;
      if (joined === n) out("ready");
    });
  });
  socket.on("m", (seq) => {
    if (seq !== state.next) state.in_order = false;
    state.next = seq + 1;
    state.count += 1;
  });
  socket.on("v", () => { state.volatile += 1; });
  socket.on("end", () => {
    results.push(state);
    out("got", { id: state.id, count: state.count, in_order: state.in_order, volatile: state.volatile });
    socket.disconnect();
    ended += 1;
    if (ended === n) {
      out("done");
      exit(0);
    }
  });
  socket.on("disconnect", (reason) => {
    if (!results.includes(state)) out("disconnect", { id: state.id, reason });
  });
  socket.on("connect_error", (err) => { out("fail", { error: String(err) }); exit(1); });
}
