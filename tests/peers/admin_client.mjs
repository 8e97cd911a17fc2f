// The admin UI's side of @socket.io/admin-ui 0.5, driven by socket.io-client:
// an admin socket on /admin plus one ordinary client on "/", against a
// fastsio server instrumented by tests/interop/test_admin_ui.py.
//
//   node admin_client.mjs port=PORT scenario=NAME [username=U password=P session=S]
//
// Prints every admin event it got (JSON lines) and "done" (exit 0).
import { io } from "socket.io-client";
import { connected, deadline, exit, out, parseArgs, sleep, until } from "./lib.mjs";

const args = parseArgs();
const url = `http://127.0.0.1:${Number(args.port)}`;
deadline(Number(args.timeout_ms ?? 20000));

function adminSocket(auth) {
  return io(`${url}/admin`, { forceNew: true, reconnection: false, transports: ["websocket"], auth });
}



const scenarios = {
  // Basic auth refused then accepted, session reuse, and every live event.
  async full() {
    const bad = adminSocket({ username: args.username, password: "wrong" });
    const err = await new Promise((resolve) => bad.once("connect_error", resolve));
    out("refused", { message: err.message });
    bad.close();

    const admin = adminSocket({ username: args.username, password: args.password });
    const seen = [];
    admin.onAny((ev, ...a) => { seen.push(ev); out("admin", { ev, args: a }); });
    await connected(admin);
    await until(() => seen.includes("config") && seen.includes("all_sockets") && seen.includes("session"), 10000, "config");
    await until(() => seen.includes("server_stats"), 10000, "stats");

    const user = io(url, { forceNew: true, reconnection: false, transports: ["polling", "websocket"] });
    user.on("welcome", () => {});
    user.on("from-admin", (...a) => out("user-got", { ev: "from-admin", args: a }));
    await connected(user);
    out("user", { id: user.id });
    await until(() => user.io.engine.transport.name === "websocket", 10000, "upgrade");
    user.emit("chat", "hello", 1);
    await until(() => seen.includes("event_received") && seen.includes("room_joined") && seen.includes("event_sent"), 10000, "events");
    // commands: make the user join a room, emit to it, then disconnect it
    admin.emit("join", "/", "from-admin-room", user.id);
    await until(() => seen.filter((e) => e === "room_joined").length >= 2, 10000, "admin join");
    admin.emit("emit", "/", "from-admin-room", "from-admin", "x", 2);
    await new Promise((resolve) => user.once("from-admin", resolve));
    await sleep(2500); // one more stats period: the aggregated counts of the above
    admin.emit("_disconnect", "/", true, user.id);
    await until(() => seen.includes("socket_disconnected") && seen.includes("room_left"), 10000, "disconnect");
    admin.disconnect();
  },

  // read_only: the features list is empty of commands and commands do nothing.
  async readonly() {
    const admin = adminSocket({});
    const seen = {};
    admin.onAny((ev, ...a) => { seen[ev] = a; out("admin", { ev, args: a }); });
    await connected(admin);
    await until(() => seen.config, 10000, "config");
    const user = io(url, { forceNew: true, reconnection: false, transports: ["websocket"] });
    await connected(user);
    admin.emit("_disconnect", "/", true);
    await sleep(500);
    out("user-still-connected", { connected: user.connected });
    user.disconnect();
    admin.disconnect();
  },

  // With a cluster adapter: the page sees a socket of another server and
  // makes it join a room (args.target is its id).
  async cluster() {
    const admin = adminSocket({});
    const seen = [];
    admin.onAny((ev, ...a) => { seen.push(ev); out("admin", { ev, args: a }); });
    await connected(admin);
    await until(() => seen.includes("all_sockets") && seen.includes("server_stats"), 10000, "all_sockets");
    admin.emit("join", "/", "picked-by-admin", args.target);
    await sleep(1500);
    admin.disconnect();
  },

  // A session id from an earlier login (args.session) connects without credentials.
  async session() {
    const admin = adminSocket({ sessionId: args.session });
    const result = await connected(admin).then(() => "connected", (e) => `refused: ${e.message}`);
    out("session", { result });
    admin.close();
  },
};

scenarios[args.scenario]().then(
  () => { out("done"); exit(0); },
  (err) => { out("fail", { error: String(err?.stack ?? err) }); exit(1); },
);
