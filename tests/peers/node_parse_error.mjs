// A real Node socket.io 4.8 server and the npm client in one process: the
// client sends one malformed Socket.IO packet, and the driver prints the
// disconnect reasons both sides saw (the reference for fastsio's behaviour).
//
//   node node_parse_error.mjs [mode=websocket|polling] [packet=9garbage] [target=PORT]
//
// With target=PORT only the client part runs, against a server on that port.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { io } from "socket.io-client";
import { deadline, exit, out, parseArgs, transportsFor } from "./lib.mjs";

const args = parseArgs();
const mode = args.mode ?? "websocket";
const packet = args.packet ?? "9garbage";
deadline(Number(args.timeout_ms ?? 15000));

let port = Number(args.target ?? 0);
let server = null;
if (!port) {
  const http = createServer();
  server = new Server(http);
  server.on("connection", (socket) => {
    socket.on("error", (err) => out("server_error", { message: String(err && err.message) }));
    socket.on("disconnect", (reason) => out("server_disconnect", { reason }));
  });
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  port = http.address().port;
}

const socket = io(`http://127.0.0.1:${port}`, { ...transportsFor(mode), forceNew: true, reconnection: false });
socket.on("connect", () => {
  out("client_connect");
  // an Engine.IO message whose Socket.IO content does not decode
  socket.io.engine.write(packet);
});
socket.on("disconnect", async (reason) => {
  out("client_disconnect", { reason });
  await new Promise((r) => setTimeout(r, 300));
  if (server) server.close();
  out("done");
  exit(0);
});
