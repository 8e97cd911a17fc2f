// Load generator of the two-servers-on-one-Redis benchmark (bench/redis_pair.py).
//
// N socket.io-client clients (websocket), half on server A, half on server B;
// every broadcast is published on A (a client of A asks with bcast(n, payload))
// and reaches B's clients through Redis. Measures B's CPU per message delivered
// to B's clients (utime + stime from /proc), and the latency from the request
// on A to the arrival at each B client for single broadcasts. Prints one JSON line.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const { io } = require("socket.io-client");

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const N = Number(arg("clients", "100"));
const BURST = Number(arg("burst", "50"));
const BURSTS = Number(arg("bursts", "5"));
const SINGLES = Number(arg("singles", "50"));
const WARMUP = Number(arg("warmup", "5"));
const TICK = Number(arg("clk-tck", "100"));
const ports = [Number(arg("port-a")), Number(arg("port-b"))];
const pids = [Number(arg("pid-a")), Number(arg("pid-b"))];
const TIMEOUT = Number(arg("timeout", "120")) * 1000;

const overall = setTimeout(() => { console.log(JSON.stringify({ ok: false, error: "timeout" })); process.exit(2); }, TIMEOUT * 3);
overall.unref();

function cpu(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICK; // seconds
}

const clients = []; // {sock, side, count}
let latB = null;
let latA = null;
async function connectAll() {
  const todo = [];
  for (let i = 0; i < N; i++) todo.push(i % 2);
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const side = todo[next++];
      const sock = io(`http://127.0.0.1:${ports[side]}`, { transports: ["websocket"], reconnection: false, forceNew: true });
      const c = { sock, side, count: 0 };
      sock.on("msg", (p) => {
        c.count++;
        if (p && p.t) {
          const lat = performance.now() - p.t;
          if (side === 1 && latB) latB.push(lat);
          else if (side === 0 && latA) latA.push(lat);
        }
      });
      await new Promise((resolve, reject) => {
        sock.once("connect", resolve);
        sock.once("connect_error", reject);
      });
      clients.push(c);
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitAll(expected) {
  const deadline = Date.now() + TIMEOUT;
  while (clients.some((c) => c.count < expected)) {
    if (Date.now() > deadline) throw new Error(`deliveries incomplete: ${clients.filter((c) => c.count < expected).length} clients behind`);
    await sleep(1);
  }
}

const pad = "x".repeat(80);
(async () => {
  try {
    await connectAll();
    await sleep(500);
    const control = clients.find((c) => c.side === 0).sock;
    const bcast = (n, payload) => new Promise((r) => control.emit("bcast", n, payload, r));
    let expected = 0;
    await bcast(WARMUP, { t: 0, text: pad });
    expected += WARMUP;
    await waitAll(expected);

    const cpu0 = pids.map(cpu);
    const t0 = performance.now();
    for (let i = 0; i < BURSTS; i++) {
      await bcast(BURST, { t: 0, text: pad });
      expected += BURST;
      await waitAll(expected);
    }
    const wall = (performance.now() - t0) / 1000;
    const cpu1 = pids.map(cpu);
    const perSide = [clients.filter((c) => c.side === 0).length, clients.filter((c) => c.side === 1).length];
    const deliveredB = BURSTS * BURST * perSide[1];
    const deliveredA = BURSTS * BURST * perSide[0];

    latA = [];
    latB = [];
    const cpuS0 = pids.map(cpu);
    for (let i = 0; i < SINGLES; i++) {
      await bcast(1, { t: performance.now(), text: pad });
      expected += 1;
      await waitAll(expected);
    }
    const cpuS1 = pids.map(cpu);
    const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
    console.log(JSON.stringify({
      ok: true, clients: N, per_side: perSide, burst: BURST, bursts: BURSTS, singles: SINGLES,
      burst_wall_s: wall,
      b_cpu_s: cpu1[1] - cpu0[1], a_cpu_s: cpu1[0] - cpu0[0],
      b_us_per_msg: ((cpu1[1] - cpu0[1]) * 1e6) / deliveredB,
      a_us_per_msg: ((cpu1[0] - cpu0[0]) * 1e6) / deliveredA,
      b_msgs_per_s: deliveredB / wall,
      single_b_cpu_us_per_msg: ((cpuS1[1] - cpuS0[1]) * 1e6) / (SINGLES * perSide[1]),
      lat_b_p50_ms: q(latB, 0.5), lat_b_p99_ms: q(latB, 0.99),
      lat_a_p50_ms: q(latA, 0.5), lat_a_p99_ms: q(latA, 0.99),
    }));
  } catch (err) {
    console.log(JSON.stringify({ ok: false, error: String(err) }));
  }
  for (const c of clients) c.sock.close();
  setTimeout(() => process.exit(0), 100);
})();
