// socket.io-client v2 (Engine.IO v3) against a fastsio Server with allow_eio3=True.
//
//   node sio_client_v2.cjs scenario=basic|namespaces|binary port=PORT [mode=websocket|polling]
//
// Prints JSON lines like sio_client.mjs and ends with "done" (exit 0), "fail"
// (exit 1) or "timeout" (exit 2). Server handlers: tests/interop/test_js_client.py.
"use strict";

const io = require("socket.io-client-v2");

async function main() {
  const { deadline, exit, kind, out, parseArgs, sleep, toJSON } = await import("./lib.mjs");
  const args = parseArgs();
  const port = Number(args.port);
  const mode = args.mode || "websocket";
  const url = `http://127.0.0.1:${port}`;
  const sockets = [];
  deadline(Number(args.timeout_ms || 20000), () => ({ sockets: sockets.map((s) => ({ nsp: s.nsp, connected: s.connected })) }));

  const VALUES = [
    "str", "é✓😀 \"quoted\" \\", "", 0, 42, -7, 2 ** 40, 3.5, -0.25, true, false, null,
    [], [1, "a", null, [true]], {}, { a: { b: [1, 2, { c: "d" }] }, "key with space": 1 },
  ];
  const opts = (extra = {}) => ({
    transports: mode === "polling" ? ["polling"] : ["websocket"],
    forceNew: true,
    reconnection: false,
    ...extra,
  });
  const track = (s) => (sockets.push(s), s);
  const connected = (s, ms = 10000) =>
    s.connected ? Promise.resolve() : new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no connect for ${s.nsp}`)), ms);
      s.once("connect", () => { clearTimeout(t); resolve(); });
      s.once("connect_error", (e) => { clearTimeout(t); reject(e); });
      s.once("error", (e) => { clearTimeout(t); reject(new Error(`error on ${s.nsp}: ${JSON.stringify(e)}`)); });
    });
  const ack = (s, ev, ...a) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ack for ${ev}`)), 10000);
      s.emit(ev, ...a, (...res) => { clearTimeout(t); resolve(res); });
    });
  const until = async (pred, ms, what) => {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await sleep(5);
    }
  };
  const nextError = (s, ms = 10000) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no error event on ${s.nsp}`)), ms);
      s.once("error", (e) => { clearTimeout(t); resolve(e); });
    });

  const scenarios = {
    async basic() {
      const socket = track(io(url, opts()));
      const seen = {};
      socket.on("hello", (...a) => {
        const cb = a.pop();
        seen.hello = a;
        cb("from-v2", 2, { y: [false] });
      });
      socket.on("server_got_ack", (...a) => { seen.server_got_ack = a; });
      await connected(socket);
      out("connect", { id: socket.id, transport: socket.io.engine.transport.name, protocol: socket.io.engine.transport.query.EIO });
      out("echo_ack", { args: await ack(socket, "echo", ...VALUES) });
      out("noargs_ack", { args: await ack(socket, "noargs") });
      await until(() => "hello" in seen && "server_got_ack" in seen, 10000, "hello");
      out("hello", { args: seen.hello });
      out("server_got_ack", { args: seen.server_got_ack });
      socket.close();
    },

    async namespaces() {
      const manager = io.Manager(url, { ...opts(), autoConnect: true });
      const root = track(manager.socket("/"));
      const admin = track(manager.socket("/admin", { query: "token=good" }));
      const got = { "/": [], "/admin": [] };
      root.on("bcast", (v) => got["/"].push(v));
      admin.on("bcast", (v) => got["/admin"].push(v));
      await Promise.all([connected(root), connected(admin)]);
      out("ids", { root: root.id, admin: admin.id, engine: manager.engine.id });
      out("whoami", { nsp: "/", args: await ack(root, "whoami") });
      out("whoami", { nsp: "/admin", args: await ack(admin, "whoami") });
      out("bcast_ack", { args: await ack(root, "bcast_all") });
      out("got", { events: got });
      const nope = track(manager.socket("/nope"));
      out("error", { nsp: "/nope", data: await nextError(nope) });
      const refused = track(manager.socket("/guarded", { query: "token=bad" }));
      out("error", { nsp: "/guarded", data: await nextError(refused) });
      root.close();
      admin.close();
    },

    async binary() {
      const socket = track(io(url, opts()));
      const seen = {};
      socket.on("sbin", (...a) => { seen.sbin = a; });
      await connected(socket);
      const big = Buffer.alloc(70000);
      for (let i = 0; i < big.length; i++) big[i] = i % 251;
      const res = await ack(socket, "bin", Buffer.from([0, 1, 2, 255]), { a: Buffer.from("xyz"), list: [1, big] }, "plain");
      out("bin_ack", { args: toJSON(res), kinds: res.map(kind) });
      socket.emit("send_sbin");
      await until(() => "sbin" in seen, 10000, "sbin");
      out("sbin", { args: toJSON(seen.sbin), kinds: seen.sbin.map(kind) });
      socket.close();
    },
  };

  const scenario = scenarios[args.scenario];
  if (!scenario) {
    out("fail", { message: `unknown scenario ${args.scenario}` });
    return exit(1);
  }
  try {
    await scenario();
    out("done", { scenario: args.scenario, mode });
    exit(0);
  } catch (err) {
    out("fail", { message: String((err && err.message) || err), stack: String((err && err.stack) || "") });
    exit(1);
  }
}

main();
