// What the poll_broadcast drivers (v4: poll_broadcast.mjs, v2: poll_broadcast_v2.cjs) share:
// N clients that each emit "ready" once connected and record every "pre", "msg"
// and "bin" event in order until "end"; then one {"event":"client","i":..,"id":..,"got":[...]}
// line per client and "done" (or "fail" and exit 1 on a connect error or a disconnect).
import { exit, kind, out } from "./lib.mjs";

/** A received argument, binary as {kind, hex} so it survives JSON. */
export function show(v) {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
    const b = Buffer.from(v instanceof ArrayBuffer ? new Uint8Array(v) : v);
    return { kind: kind(v), hex: b.toString("hex") };
  }
  return v;
}

/** Opens `n` clients with `connect(i)` (a socket.io-client Socket, v4 or v2), records, reports, exits. */
export async function runBroadcastClients(n, connect) {
  const sockets = [];
  const done = [];
  for (let i = 0; i < n; i++) {
    const socket = connect(i);
    sockets.push(socket);
    const got = [];
    for (const ev of ["pre", "msg", "bin"]) socket.on(ev, (...a) => got.push([ev, ...a.map(show)]));
    done.push(new Promise((resolve, reject) => {
      socket.on("end", () => resolve(got));
      socket.on("connect_error", reject);
      socket.on("disconnect", (reason) => reject(new Error(`disconnected: ${reason}`)));
    }));
    socket.on("connect", () => socket.emit("ready", i, socket.io.engine.transport.name));
  }
  try {
    const all = await Promise.all(done);
    all.forEach((got, i) => out("client", { i, id: sockets[i].id, got }));
    for (const s of sockets) s.disconnect();
    out("done");
    exit(0);
  } catch (err) {
    out("fail", { error: String(err) });
    exit(1);
  }
}
