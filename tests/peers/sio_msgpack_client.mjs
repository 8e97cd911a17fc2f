// socket.io-client v4 built with socket.io-msgpack-parser against a fastsio
// Server(parser=fastsio.parsers.msgpack), one named scenario per run.
//
//   node sio_msgpack_client.mjs scenario=NAME port=PORT [mode=websocket|polling|upgrade]
//
// Prints what the client saw as JSON lines and ends with "done" (exit 0);
// "fail" exits 1, the deadline "timeout" exits 2. The server side is in
// tests/interop/test_msgpack_parser.py.
import { io } from "socket.io-client";
import parser from "socket.io-msgpack-parser";
import { connected, deadline, exit, kind, once, out, parseArgs, sleep, toJSON, transportsFor, until } from "./lib.mjs";

const args = parseArgs();
const port = Number(args.port);
const mode = args.mode ?? "websocket";
const url = `http://127.0.0.1:${port}`;
deadline(Number(args.timeout_ms ?? 20000));

function connectOpts(extra = {}) {
  return { ...transportsFor(mode), parser, forceNew: true, reconnection: false, ...extra };
}


function ack(socket, ev, ...emitArgs) {
  return new Promise((resolve, reject) => {
    socket.timeout(10000).emit(ev, ...emitArgs, (err, ...res) => (err ? reject(err) : resolve(res)));
  });
}


const scenarios = {
  // Acks both ways with JSON values and binary (a Buffer and an ArrayBuffer),
  // a server emit, and the transport the session ended on.
  async basic() {
    const socket = io(url, connectOpts({ auth: { token: "t1" } }));
    const hello = [];
    socket.on("hello", (...a) => {
      const cb = typeof a[a.length - 1] === "function" ? a.pop() : null;
      hello.push(a);
      if (cb) cb("from-client", Buffer.from([7, 7]));
    });
    await connected(socket);
    const values = ["str", "é✓😀", 0, -7, 2 ** 40, 3.5, true, null, [1, [2, [3]]], { a: { b: [1, 2] } }];
    const echoed = await ack(socket, "echo", ...values);
    out("echo", { value: toJSON(echoed), same: JSON.stringify(echoed) === JSON.stringify(values) });
    const bin = await ack(socket, "bin", Buffer.from([0, 1, 2, 255]), new Uint8Array([9, 8, 7]).buffer, { nested: [Buffer.from("xy")] });
    out("bin", { value: toJSON(bin), kinds: bin.map(kind) });
    await until(() => hello.length > 0, 10000, "hello");
    out("hello", { value: toJSON(hello[0]) });
    if (mode === "upgrade" && socket.io.engine.transport.name !== "websocket") await once(socket.io.engine, "upgrade", 10000);
    const got = await ack(socket, "ask-back");
    out("ask-back", { value: toJSON(got) });
    out("transport", { name: socket.io.engine.transport.name });
    socket.disconnect();
  },

  // A namespace, a middleware refusal with data, and a broadcast to a room.
  async namespaces() {
    const refused = io(`${url}/private`, connectOpts());
    const err = await new Promise((resolve) => refused.once("connect_error", resolve));
    out("connect_error", { message: err.message, data: toJSON(err.data ?? null) });
    refused.close();
    const a = io(`${url}/chat`, connectOpts());
    const b = io(`${url}/chat`, connectOpts());
    const gotA = [];
    const gotB = [];
    a.on("news", (...x) => gotA.push(x));
    b.on("news", (...x) => gotB.push(x));
    await connected(a);
    await connected(b);
    await ack(a, "join", "room1");
    await ack(b, "join", "room1");
    await ack(a, "shout", "room1", Buffer.from([1, 2, 3]));
    await until(() => gotA.length && gotB.length, 10000, "broadcast");
    out("broadcast", { a: toJSON(gotA), b: toJSON(gotB), kinds: gotB[0].map(kind) });
    a.disconnect();
    b.disconnect();
  },
};

const scenario = scenarios[args.scenario];
if (!scenario) {
  out("fail", { error: `unknown scenario ${args.scenario}` });
  exit(1);
} else {
  scenario().then(
    () => { out("done"); exit(0); },
    (err) => { out("fail", { error: String(err?.stack ?? err) }); exit(1); },
  );
}
