// A Node socket.io 4.8 server with socket.io-msgpack-parser and the classic
// @socket.io/redis-adapter, beside a fastsio server (parser=msgpack, RedisAdapter)
// on the same Redis: a broadcast made on either server reaches the msgpack
// clients of both, binary intact (tests/interop/test_msgpack_parser.py).
//
//   node msgpack_redis_node.mjs redis=URL fastsio_port=P
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { connected, deadline, exit, kind, out, parseArgs, sleep, toJSON, until } from "./lib.mjs";

const require = createRequire(import.meta.url);
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { io: ioc } = require("socket.io-client");
const { createClient } = require("redis");
const parser = require("socket.io-msgpack-parser");

const args = parseArgs();
deadline(Number(args.timeout_ms ?? 30000));



async function main() {
  const pub = createClient({ url: args.redis });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const http = createServer();
  const io = new Server(http, { parser, cors: { origin: "*" } });
  io.adapter(createAdapter(pub, sub));
  io.on("connection", (socket) => {
    socket.on("shout", (payload, cb) => { io.emit("news", "from-node", payload); cb("ok"); });
  });
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  const nodePort = http.address().port;

  const opts = { parser, forceNew: true, reconnection: false, transports: ["websocket"] };
  const onNode = ioc(`http://127.0.0.1:${nodePort}`, opts);
  const onFastsio = ioc(`http://127.0.0.1:${Number(args.fastsio_port)}`, opts);
  const got = { onNode: [], onFastsio: [] };
  onNode.on("news", (...a) => got.onNode.push(a));
  onFastsio.on("news", (...a) => got.onFastsio.push(a));
  await Promise.all([connected(onNode), connected(onFastsio)]);
  await sleep(200); // both adapters subscribed

  await onNode.timeout(5000).emitWithAck("shout", Buffer.from([1, 2, 3, 250]));
  await until(() => got.onNode.length >= 1 && got.onFastsio.length >= 1, 10000, "node broadcast on both");
  await onFastsio.timeout(5000).emitWithAck("shout", Buffer.from([9, 0, 9]));
  await until(() => got.onNode.length >= 2 && got.onFastsio.length >= 2, 10000, "fastsio broadcast on both");
  for (const [where, list] of Object.entries(got)) {
    out("got", { where, messages: toJSON(list), kinds: list.map((m) => m.map(kind)) });
  }
  onNode.close();
  onFastsio.close();
  io.close();
  await Promise.all([pub.quit(), sub.quit()]);
}

main().then(
  () => { out("done"); exit(0); },
  (err) => { out("fail", { error: String(err?.stack ?? err) }); exit(1); },
);
