// Load generator of the parser comparison (bench/msgpack_fanout.py): N real
// socket.io-client clients (with socket.io-msgpack-parser when parser=msgpack)
// in room "all" of the benchmark app; one of them asks bcast(burst, payload)
// `rounds` times and every client counts the "msg" events it gets. The
// server's CPU (utime+stime of /proc/PID/stat) is read around the phase.
// Prints one JSON line.
//
//   node msgpack_fanout.mjs port=P pid=PID clk_tck=100 parser=default|msgpack clients=1000 burst=100 rounds=5
import fs from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { io } = require("socket.io-client");
const msgpackParser = require("socket.io-msgpack-parser");

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split("=")));
const port = Number(args.port);
const clients = Number(args.clients ?? 1000);
const burst = Number(args.burst ?? 100);
const rounds = Number(args.rounds ?? 5);
const clk = Number(args.clk_tck ?? 100);
const payload = { id: 123456, user: "bench-user", room: "all", ts: 1700000000000, text: "x".repeat(24) };
const limit = setTimeout(() => { console.log(JSON.stringify({ ok: false, error: "deadline" })); process.exit(2); }, 600000);

function serverCpuUs() {
  const fields = fs.readFileSync(`/proc/${args.pid}/stat`, "latin1").split(") ")[1].split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / clk; // utime + stime
}

const opts = { transports: ["websocket"], forceNew: true, reconnection: false };
if (args.parser === "msgpack") opts.parser = msgpackParser;
const sockets = [];
let received = 0;
for (let i = 0; i < clients; i++) {
  const s = io(`http://127.0.0.1:${port}`, opts);
  s.on("msg", () => { received++; });
  sockets.push(s);
}
await Promise.all(sockets.map((s) => new Promise((resolve, reject) => {
  s.once("connect", resolve);
  s.once("connect_error", reject);
})));
await new Promise((r) => setTimeout(r, 500));

// warm-up round, not measured
const asker = sockets[0];
let expected = clients * burst;
await asker.timeout(60000).emitWithAck("bcast", burst, payload);
while (received < expected) await new Promise((r) => setTimeout(r, 2));

received = 0;
expected = clients * burst * rounds;
const cpu0 = serverCpuUs();
const t0 = process.hrtime.bigint();
for (let r = 0; r < rounds; r++) await asker.timeout(60000).emitWithAck("bcast", burst, payload);
while (received < expected) await new Promise((r) => setTimeout(r, 2));
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = serverCpuUs() - cpu0;
console.log(JSON.stringify({ ok: received === expected, delivered: received, seconds,
  msgs_per_s: received / seconds, cpu_us_per_msg: cpu / received }));
clearTimeout(limit);
for (const s of sockets) s.close();
process.exit(0);
