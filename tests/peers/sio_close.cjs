// What a socket.io client receives before the server closes it.
//
//   node sio_close.cjs port=PORT [mode=websocket|polling|upgrade] [client=v4|v2] [nsps=/,/guarded]
//
// Opens one Manager (one Engine.IO connection) with a socket per namespace,
// records every "m" event, connect_error and disconnect reason per namespace,
// and ends once every socket is disconnected or refused: one "result" line per
// namespace, then "done" (exit 0); "timeout" (exit 2) after timeout_ms. With
// leave_after=N a socket disconnects by itself after N "m" events (the
// namespaces that are meant to stay open). Server side:
// tests/interop/test_close_paths.py.
"use strict";

async function main() {
  const { deadline, exit, out, parseArgs } = await import("./lib.mjs");
  const args = parseArgs();
  const port = Number(args.port);
  const mode = args.mode || "websocket";
  const v2 = args.client === "v2";
  const url = `http://127.0.0.1:${port}`;
  const nsps = (args.nsps || "/").split(",");
  const leaveAfter = args.leave_after ? Number(args.leave_after) : 0;
  const state = {};
  deadline(Number(args.timeout_ms || 15000), () => ({ state }));

  const transports = mode === "polling" ? ["polling"] : mode === "websocket" ? ["websocket"] : ["polling", "websocket"];
  const opts = { transports, upgrade: mode === "upgrade", reconnection: false, forceNew: true };
  let manager;
  if (v2) {
    manager = require("socket.io-client-v2").Manager(url, { ...opts, autoConnect: true });
  } else {
    manager = new (require("socket.io-client").Manager)(url, opts);
  }
  const finished = () => nsps.every((n) => state[n].end !== null);
  const finish = () => {
    if (!finished()) return;
    for (const n of nsps) out("result", { nsp: n, ...state[n] });
    out("done", { mode });
    // a moment for the client's own close packet to leave, as a real client's would
    setTimeout(() => exit(0), 150);
  };
  for (const n of nsps) {
    const s = manager.socket(n);
    const st = (state[n] = { m: [], connected: false, reason: null, connect_error: null, end: null, transport: null });
    s.on("m", (v) => {
      st.m.push(v);
      if (leaveAfter && st.m.length === leaveAfter) {
        st.reason = "left";
        st.end = "left";
        s.disconnect();
        finish();
      }
    });
    s.on("connect", () => { st.connected = true; });
    s.on("disconnect", (reason) => {
      if (st.end !== null) return;
      st.reason = reason;
      st.end = "disconnect";
      st.transport = manager.engine && manager.engine.transport ? manager.engine.transport.name : null;
      finish();
    });
    const refused = (err) => {
      if (st.end !== null) return;
      st.connect_error = typeof err === "object" && err !== null && "message" in err
        ? { message: err.message, data: err.data === undefined ? null : err.data }
        : { message: String(err), data: null };
      st.end = "connect_error";
      finish();
    };
    s.on("connect_error", refused);
    if (v2) s.on("error", refused);
  }
}

main();
