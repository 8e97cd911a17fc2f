// Load generator of the two-servers-on-one-Redis benchmark (bench/redis_pair.py).
//
// N socket.io-client clients (websocket), half on server A (main thread), half
// on server B (a worker thread, so that reading A's deliveries does not delay
// the timing of B's); every broadcast is published on A (a client of A asks
// with bcast(n, payload)) and reaches B's clients through Redis. Measures B's
// CPU per message delivered to B's clients (utime + stime from /proc), and the
// latency from the request on A to the arrival at each B client for single
// broadcasts (absolute high-resolution clock shared by both threads). Prints one JSON line.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";

const require = createRequire(import.meta.url);
const { io } = require("socket.io-client");
const now = () => performance.timeOrigin + performance.now();

async function connectClients(port, n, counts, offset, onLatency) {
  const socks = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const sock = io(`http://127.0.0.1:${port}`, { transports: ["websocket"], reconnection: false, forceNew: true });
      sock.on("msg", (p) => {
        Atomics.add(counts, offset + i, 1);
        if (p && p.t) onLatency(now() - p.t);
      });
      await new Promise((resolve, reject) => {
        sock.once("connect", resolve);
        sock.once("connect_error", reject);
      });
      socks.push(sock);
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
  return socks;
}

if (!isMainThread) {
  // B's clients
  const { port, n, shared } = workerData;
  const counts = new Int32Array(shared);
  let lat = null;
  const socks = await connectClients(port, n, counts, 0, (ms) => { if (lat) lat.push(ms); });
  parentPort.postMessage({ type: "ready" });
  parentPort.on("message", (m) => {
    if (m.type === "measure") lat = [];
    else if (m.type === "report") parentPort.postMessage({ type: "latencies", lat });
    else if (m.type === "close") { for (const s of socks) s.close(); setTimeout(() => process.exit(0), 50); }
  });
} else {
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

  const cpu = (pid) => {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICK; // seconds
  };
  const nA = Math.ceil(N / 2);
  const nB = N - nA;
  const countsA = new Int32Array(nA);
  const sharedB = new SharedArrayBuffer(4 * nB);
  const countsB = new Int32Array(sharedB);
  let latA = null;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const behind = (expected) => {
    let k = 0;
    for (let i = 0; i < nA; i++) if (countsA[i] < expected) k++;
    for (let i = 0; i < nB; i++) if (Atomics.load(countsB, i) < expected) k++;
    return k;
  };
  const waitAll = async (expected) => {
    const deadline = Date.now() + TIMEOUT;
    while (behind(expected) > 0) {
      if (Date.now() > deadline) throw new Error(`deliveries incomplete: ${behind(expected)} clients behind`);
      await sleep(1);
    }
  };
  const pad = "x".repeat(80);
  let worker = null;
  let socksA = [];
  try {
    worker = new Worker(new URL(import.meta.url), { workerData: { port: ports[1], n: nB, shared: sharedB } });
    const fromWorker = (type) => new Promise((resolve, reject) => {
      const on = (m) => { if (m.type === type) { worker.off("message", on); resolve(m); } };
      worker.on("message", on);
      worker.once("error", reject);
    });
    const readyB = fromWorker("ready");
    socksA = await connectClients(ports[0], nA, countsA, 0, (ms) => { if (latA) latA.push(ms); });
    await readyB;
    await sleep(500);
    const control = socksA[0];
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
    const deliveredB = BURSTS * BURST * nB;
    const deliveredA = BURSTS * BURST * nA;

    latA = [];
    worker.postMessage({ type: "measure" });
    const cpuS0 = pids.map(cpu);
    for (let i = 0; i < SINGLES; i++) {
      await bcast(1, { t: now(), text: pad });
      expected += 1;
      await waitAll(expected);
    }
    const cpuS1 = pids.map(cpu);
    const reported = fromWorker("latencies");
    worker.postMessage({ type: "report" });
    const latB = (await reported).lat;
    const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
    console.log(JSON.stringify({
      ok: true, clients: N, per_side: [nA, nB], burst: BURST, bursts: BURSTS, singles: SINGLES,
      burst_wall_s: wall,
      b_cpu_s: cpu1[1] - cpu0[1], a_cpu_s: cpu1[0] - cpu0[0],
      b_us_per_msg: ((cpu1[1] - cpu0[1]) * 1e6) / deliveredB,
      a_us_per_msg: ((cpu1[0] - cpu0[0]) * 1e6) / deliveredA,
      b_msgs_per_s: deliveredB / wall,
      single_b_cpu_us_per_msg: ((cpuS1[1] - cpuS0[1]) * 1e6) / (SINGLES * nB),
      lat_b_p50_ms: q(latB, 0.5), lat_b_p99_ms: q(latB, 0.99),
      lat_a_p50_ms: q(latA, 0.5), lat_a_p99_ms: q(latA, 0.99),
    }));
  } catch (err) {
    console.log(JSON.stringify({ ok: false, error: String(err && err.stack || err) }));
  }
  for (const s of socksA) s.close();
  if (worker) worker.postMessage({ type: "close" });
  setTimeout(() => process.exit(0), 200);
}
