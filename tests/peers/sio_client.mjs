// socket.io-client v4 against a fastsio Server, one named scenario per run.
//
//   node sio_client.mjs scenario=NAME port=PORT [mode=websocket|polling|upgrade]
//
// Each scenario prints what the client saw as JSON lines ({"event": ...}) and
// ends with a "done" line and exit code 0; a failure prints "fail" and exits
// 1, the deadline prints "timeout" and exits 2. The matching server handlers
// are in tests/interop/test_js_client.py.
import { io, Manager } from "socket.io-client";
import { deadline, exit, kind, once, out, parseArgs, sleep, toJSON, transportsFor } from "./lib.mjs";

const args = parseArgs();
const port = Number(args.port);
const mode = args.mode ?? "websocket";
const url = `http://127.0.0.1:${port}`;
const timeoutMs = Number(args.timeout_ms ?? 20000);
const sockets = [];
deadline(timeoutMs, () => ({ sockets: sockets.map((s) => ({ id: s.id ?? null, nsp: s.nsp, connected: s.connected })) }));

// Every JSON type, as the server must see them and send them back.
const VALUES = [
  "str", "é✓😀 \u0000 \"quoted\" \\", "", 0, 42, -7, 2 ** 40, 3.5, -0.25, true, false, null,
  [], [1, "a", null, [true]], {}, { a: { b: [1, 2, { c: "d" }] }, "key with space": 1 },
];

function connectOpts(extra = {}) {
  return { ...transportsFor(mode), forceNew: true, reconnection: false, ...extra };
}

function track(socket) {
  sockets.push(socket);
  return socket;
}

/** Resolves once the socket is connected (rejects on connect_error). */
function connected(socket, ms = 10000) {
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connect for ${socket.nsp} within ${ms} ms`)), ms);
    socket.once("connect", () => { clearTimeout(timer); resolve(); });
    socket.once("connect_error", (err) => { clearTimeout(timer); reject(err); });
  });
}

/** emit with an ack callback, resolving with every ack argument. */
function ack(socket, ev, ...emitArgs) {
  return new Promise((resolve, reject) => {
    socket.timeout(10000).emit(ev, ...emitArgs, (err, ...res) => (err ? reject(err) : resolve(res)));
  });
}

/** Waits, in upgrade mode, until the engine has moved to websocket. */
async function settleTransport(socket) {
  const engine = socket.io.engine;
  if (mode === "upgrade" && engine.transport.name !== "websocket") await once(engine, "upgrade", 10000);
  return engine.transport.name;
}

function collector(socket, ev) {
  const got = [];
  socket.on(ev, (...a) => got.push(a));
  return got;
}

async function until(predicate, ms = 10000, what = "condition") {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const scenarios = {
  // Emit and ack both ways with every JSON type.
  async basic() {
    const socket = track(io(url, connectOpts()));
    const seen = {};
    let upgradedDuring = false;
    socket.on("hello", (...a) => {
      const cb = a.pop();
      seen.hello = a;
      cb("from-client", 1, { x: [true, null] });
    });
    socket.on("server_got_ack", (...a) => { seen.server_got_ack = a; });
    socket.on("ask", (n, cb) => cb(n * 2));
    socket.on("ask_result", (r) => { seen.ask_result = r; });
    socket.on("fire_seen", (...a) => { seen.fire_seen = a; });
    await connected(socket);
    socket.io.engine.on("upgrade", () => { upgradedDuring = true; });
    out("connect", { id: socket.id, recovered: socket.recovered === true, transport: socket.io.engine.transport.name });
    out("echo_ack", { args: await ack(socket, "echo", ...VALUES) });
    out("noargs_ack", { args: await ack(socket, "noargs") });
    out("sum", { value: await socket.timeout(10000).emitWithAck("sum", 1, 2, 3.5) });
    socket.emit("fire", { x: 1 }, [2]);
    await until(() => "hello" in seen && "server_got_ack" in seen && "ask_result" in seen && "fire_seen" in seen, 10000, "server-initiated events");
    out("hello", { args: seen.hello });
    out("server_got_ack", { args: seen.server_got_ack });
    out("ask_result", { value: seen.ask_result });
    out("fire_seen", { args: seen.fire_seen });
    out("transport", { name: await settleTransport(socket), upgraded_during_test: upgradedDuring });
    socket.disconnect();
  },

  // Binary attachments both ways, top level and nested, including empty and large.
  async binary() {
    const socket = track(io(url, connectOpts()));
    const got = {};
    socket.on("sbin", (...a) => { got.sbin = a; });
    await connected(socket);
    const big = Buffer.alloc(70000);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    const res = await ack(
      socket, "bin",
      Buffer.from([0, 1, 2, 255]),
      { a: Buffer.from("xyz"), list: [1, big, { deep: Buffer.alloc(0) }], s: "text" },
      "plain",
    );
    out("bin_ack", { args: toJSON(res), kinds: res.map(kind), nested_kind: kind(res[1]?.list?.[1]) });
    socket.emit("send_sbin");
    await until(() => "sbin" in got, 10000, "sbin");
    out("sbin", { args: toJSON(got.sbin), kinds: got.sbin.map(kind) });
    out("transport", { name: await settleTransport(socket) });
    socket.disconnect();
  },

  // Rooms, broadcast and exclusions, seen by four clients in this process.
  async rooms() {
    const plan = { c0: ["a"], c1: ["a", "b"], c2: ["b"], c3: ["c"] };
    const clients = {};
    const received = {};
    const fins = new Set();
    for (const [name, rooms] of Object.entries(plan)) {
      const s = track(io(url, connectOpts({ auth: { name, rooms } })));
      clients[name] = s;
      received[name] = [];
      s.on("m", (v) => received[name].push(v));
      s.on("q", (cb) => cb(name));
      s.on("fin", () => fins.add(name));
    }
    await Promise.all(Object.values(clients).map((s) => connected(s)));
    out("connected", { ids: Object.fromEntries(Object.entries(clients).map(([n, s]) => [n, s.id])) });
    const res = await ack(clients.c0, "go");
    out("go_ack", { args: res });
    await until(() => fins.size === 4, 10000, "fin on every client");
    for (const name of Object.keys(plan)) out("received", { name, m: received[name] });
    for (const s of Object.values(clients)) s.disconnect();
  },

  // Namespaces over one connection, a dynamic one, and an unknown one.
  async namespaces() {
    const manager = new Manager(url, { ...transportsFor(mode), reconnection: false });
    const names = ["/", "/admin", "/dyn-42", "/nope"];
    const socks = Object.fromEntries(names.map((n) => [n, track(manager.socket(n))]));
    const got = Object.fromEntries(names.map((n) => [n, []]));
    for (const n of names) {
      for (const ev of ["admin_only", "admin_bcast", "root_bcast", "dyn_bcast"]) {
        socks[n].on(ev, (...a) => got[n].push([ev, ...a]));
      }
    }
    const errors = {};
    socks["/nope"].on("connect_error", (err) => { errors["/nope"] = { message: err.message, data: err.data ?? null }; });
    await Promise.all(["/", "/admin", "/dyn-42"].map((n) => connected(socks[n])));
    await until(() => "/nope" in errors, 10000, "connect_error on /nope");
    out("connect_error", { nsp: "/nope", ...errors["/nope"] });
    for (const n of ["/", "/admin", "/dyn-42"]) {
      out("whoami", { nsp: n, args: await ack(socks[n], "whoami") });
    }
    out("ping_all_ack", { args: await ack(socks["/"], "ping_all") });
    // The acks above came after the broadcasts on the same connection, and the
    // engine connection is shared, so everything has arrived by now.
    for (const n of names) out("got", { nsp: n, events: got[n] });
    out("engine", { one_connection: new Set(["/", "/admin", "/dyn-42"].map((n) => socks[n].io.engine.id)).size === 1 });
    for (const s of Object.values(socks)) s.disconnect();
  },

  // Middleware refusal with data, on the main namespace and an async one.
  async middleware() {
    const bad = track(io(url, connectOpts({ auth: { token: "bad" } })));
    const errBad = await once(bad, "connect_error", 10000);
    out("connect_error", { who: "bad", message: errBad[0].message, data: errBad[0].data ?? null });
    const good = track(io(url, connectOpts({ auth: { token: "good" } })));
    await connected(good);
    out("connect", { who: "good", id: good.id });
    out("me", { args: await ack(good, "me") });
    const asyncBad = track(io(`${url}/async`, connectOpts({ auth: { token: "bad" } })));
    const errAsync = await once(asyncBad, "connect_error", 10000);
    out("connect_error", { who: "async_bad", message: errAsync[0].message, data: errAsync[0].data ?? null });
    const asyncGood = track(io(`${url}/async`, connectOpts({ auth: { token: "good" } })));
    await connected(asyncGood);
    out("connect", { who: "async_good", nsp: asyncGood.nsp });
    good.disconnect();
    asyncGood.disconnect();
  },

  // Disconnect reasons as the client sees them; the server records its side.
  async disconnect() {
    const reasons = {};
    const make = (name, extra = {}) => {
      const s = track(io(url, connectOpts({ auth: { name }, ...extra })));
      s.on("disconnect", (reason, details) => {
        reasons[name] = reason;
        out("disconnect", { name, reason, details: details?.description?.message ?? details?.message ?? null });
      });
      return s;
    };
    const kick = make("kick");
    const leave = make("leave");
    const close = make("close");
    const engineClose = make("engine_close");
    const connClose = make("conn_close");
    await Promise.all([kick, leave, close, engineClose, connClose].map((s) => connected(s)));
    kick.emit("kick_me");            // server: socket.disconnect()
    leave.disconnect();              // client side
    close.emit("close_me");          // server: socket.disconnect(close=True)
    connClose.emit("drop_me");       // server: socket.conn.close()
    engineClose.io.engine.close();   // the client closes the Engine.IO connection
    await until(() => ["kick", "leave", "close", "engine_close", "conn_close"].every((n) => n in reasons), 10000, "every disconnect");
    out("reasons", { reasons });
  },

  // Connection state recovery: the server drops the transport, broadcasts
  // while the client is away, and the client gets it all back on reconnect.
  async recovery() {
    const socket = track(io(url, { ...transportsFor(mode), forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 200 }));
    const events = [];
    const connects = [];
    socket.on("welcome", (...a) => events.push(["welcome", ...a]));
    socket.on("missed", (...a) => events.push(["missed", ...a]));
    socket.on("connect", () => connects.push({ id: socket.id, recovered: socket.recovered === true }));
    socket.on("disconnect", (reason) => out("disconnect", { reason }));
    await connected(socket);
    await until(() => events.length >= 1, 10000, "welcome");
    out("connect", connects[0]);
    const firstId = socket.id;
    socket.emit("drop_me");
    await until(() => connects.length >= 2, 10000, "the reconnection");
    out("reconnect", { ...connects[1], same_id: socket.id === firstId });
    await until(() => events.filter((e) => e[0] === "missed").length >= 3, 5000, "the missed events").catch(() => {});
    out("events", { events });
    out("check", { args: await ack(socket, "check") });
    socket.disconnect();
  },
};

const scenario = scenarios[args.scenario];
if (!scenario) {
  out("fail", { message: `unknown scenario ${args.scenario}` });
  exit(1);
} else {
  scenario().then(
    () => { out("done", { scenario: args.scenario, mode }); exit(0); },
    (err) => { out("fail", { message: String(err?.message ?? err), stack: String(err?.stack ?? "") }); exit(1); },
  );
}
