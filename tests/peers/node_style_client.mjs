// socket.io-client v4 against a server whose handlers are written Node style
// (ack callback as the last parameter, disconnect(reason, description),
// next({message, data})). The matching server is in tests/interop/test_node_style.py.
//
//   node node_style_client.mjs port=PORT [mode=websocket|polling|upgrade]
import { io } from "socket.io-client";
import { deadline, exit, out, parseArgs, transportsFor } from "./lib.mjs";

const args = parseArgs();
const url = `http://127.0.0.1:${Number(args.port)}`;
const mode = args.mode ?? "websocket";
deadline(Number(args.timeout_ms ?? 20000));
const opts = (extra = {}) => ({ ...transportsFor(mode), forceNew: true, reconnection: false, ...extra });

function ack(socket, ms, ev, ...a) {
  return new Promise((resolve) => {
    socket.timeout(ms).emit(ev, ...a, (err, ...res) => resolve(err ? { error: err.message } : { res }));
  });
}

const socket = io(url, opts());
await new Promise((resolve, reject) => { socket.on("connect", resolve); socket.on("connect_error", reject); });
out("connected");
out("callback", await ack(socket, 5000, "callback", { n: 1 }, "two"));
out("deferred", await ack(socket, 5000, "deferred", 20));
out("unanswered", await ack(socket, 300, "unanswered", 1));
out("empty", await ack(socket, 5000, "returns_none", 1));
socket.emit("callback_no_ack", "x");           // the handler's callback is a no-op
out("after_no_ack", await ack(socket, 5000, "count"));
socket.disconnect();

// a middleware refusing with next({message, data}) on another namespace
const refused = io(`${url}/guarded`, opts());
const err = await new Promise((resolve) => refused.on("connect_error", resolve));
out("refused", { message: err.message, data: err.data ?? null });
refused.close();
await new Promise((r) => setTimeout(r, 100));
out("done");
exit(0);
