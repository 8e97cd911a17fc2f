// Load generator for the fastsio benchmarks: many Socket.IO clients in one
// Node process, over raw TCP, speaking WebSocket + Engine.IO v4 + Socket.IO v5
// text framing itself so that a delivered message costs a few byte compares
// (no JSON decoding, no per-frame objects, large frames skipped, not copied).
//
//   node loadgen.js --port 3000 --pid 1234 --scenario fanout --clients 1000
//
// The server's CPU time (utime+stime from /proc/PID/stat) and RSS
// (/proc/PID/status) are read before and after each phase. One JSON object is
// printed on stdout at the end; progress goes to stderr.
//
// Scenarios:
//   fanout  connect --clients, then a burst (bcast n=--burst) and --singles
//           rounds of bcast n=1 (each round waits for the ack and for every
//           client to get the message); also RSS per idle client.
//   binary  like a fanout burst, with a --attachment-bytes bytes attachment.
//   echo    --clients clients each doing --per-client sequential acked echoes.
//   connect --total handshakes + namespace connects at --concurrency, each
//           closed once connected.
//
// Client kinds (fanout/binary/echo; issue 14):
//   --transport polling  Engine.IO v4 long-polling only: a GET loop per client
//                        (payloads split on \x1e) and POSTs for acks, pongs and
//                        events, one POST in flight per client (keep-alive agent).
//   --eio 3              Engine.IO v3 / Socket.IO v4 protocol (socket.io v2
//                        clients) over WebSocket: no "40" sent (the server
//                        connects "/" itself), the client pings.
//   --deflate 1          offers permessage-deflate; compressed frames (RSV1) are
//                        inflated (zlib inflateRaw, RFC 7692: 00 00 ff ff trailer
//                        appended), then counted. server_no_context_takeover is
//                        asked for (fastsio always answers with it), so every
//                        message inflates on its own.
"use strict";
const net = require("net");
const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const zlib = require("zlib");

// ---------------------------------------------------------------- options

const opts = {
  port: 3000,
  pid: 0,
  tree: 0, // 1: CPU and RSS of --pid and all its descendants (a primary and its workers)
  scenario: "fanout",
  clients: 1000,
  burst: 200,
  warmup: 20,
  singles: 50,
  payloadBytes: 100,
  attachmentBytes: 10240,
  perClient: 400,
  total: 1000,
  concurrency: 50,
  connectConcurrency: 100,
  clkTck: 100,
  timeout: 120, // seconds, per phase
  maxSeconds: 15, // a burst or singles loop predicted to take longer is cut to fit
  minSeconds: 1, // bursts are repeated until the phase lasts this long...
  maxBursts: 25, // ...up to this many
  settle: 1000, // ms of idle before the idle-RSS sample
  offset: 0, // 1: the server appends a recovery offset (a string) to every broadcast
  transport: "websocket", // or "polling"
  eio: 4, // 3: Engine.IO v3 over WebSocket
  deflate: 0, // 1: offer permessage-deflate and inflate what arrives compressed
};
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, "").replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  if (!(key in opts)) {
    console.error(`unknown option ${process.argv[i]}`);
    process.exit(2);
  }
  const v = process.argv[i + 1];
  opts[key] = typeof opts[key] === "number" ? Number(v) : v;
}

function log(...a) {
  console.error(`[loadgen ${opts.scenario}]`, ...a);
}

// ---------------------------------------------------------------- /proc

function statFields(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
  // rest[0] is field 3 (state), rest[1] the parent pid; utime and stime are fields 14 and 15.
  return s.slice(s.lastIndexOf(")") + 2).split(" ");
}

// the server's processes: --pid, and with --tree 1 every descendant of it
function serverPids() {
  if (!opts.tree) return [opts.pid];
  const parent = new Map();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      parent.set(Number(name), Number(statFields(name)[1]));
    } catch (e) {
      // gone meanwhile
    }
  }
  const pids = [opts.pid];
  for (let i = 0; i < pids.length; i++) {
    for (const [pid, ppid] of parent) if (ppid === pids[i]) pids.push(pid);
  }
  return pids;
}

function serverCpuUs() {
  if (!opts.pid) return 0;
  let total = 0;
  for (const pid of serverPids()) {
    try {
      const rest = statFields(pid);
      total += ((Number(rest[11]) + Number(rest[12])) * 1e6) / opts.clkTck;
    } catch (e) {
      // gone meanwhile
    }
  }
  return total;
}

function serverRss() {
  if (!opts.pid) return 0;
  let total = 0;
  for (const pid of serverPids()) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "latin1"));
      total += m ? Number(m[1]) * 1024 : 0;
    } catch (e) {
      // gone meanwhile
    }
  }
  return total;
}

function selfCpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()) / 1e9; // seconds

// A phase: wall time, server CPU and our own CPU between start() and stop().
class Phase {
  constructor() {
    this.t0 = now();
    this.cpu0 = serverCpuUs();
    this.self0 = selfCpuUs();
  }
  // Wall time ends at `end` (the last delivery); CPU is read after `settleMs`
  // so that work the server still does for this phase is counted.
  async stop(end, settleMs = 100) {
    const wall = (end ?? now()) - this.t0;
    if (settleMs) await sleep(settleMs);
    return {
      wall_s: wall,
      server_cpu_us: serverCpuUs() - this.cpu0,
      loadgen_cpu_us: selfCpuUs() - this.self0,
    };
  }
}

// ---------------------------------------------------------------- frames

let maskPool = crypto.randomBytes(4096);
let maskPos = 0;

// One masked client frame (RFC 6455 5.3: a client masks every frame).
function clientFrame(opcode, payload) {
  if (typeof payload === "string") payload = Buffer.from(payload);
  const n = payload.length;
  const hlen = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(hlen + 4 + n);
  out[0] = 0x80 | opcode;
  if (n < 126) {
    out[1] = 0x80 | n;
  } else if (n < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  if (maskPos + 4 > maskPool.length) {
    maskPool = crypto.randomBytes(4096);
    maskPos = 0;
  }
  const m0 = maskPool[maskPos], m1 = maskPool[maskPos + 1], m2 = maskPool[maskPos + 2], m3 = maskPool[maskPos + 3];
  maskPos += 4;
  out[hlen] = m0;
  out[hlen + 1] = m1;
  out[hlen + 2] = m2;
  out[hlen + 3] = m3;
  const mask = [m0, m1, m2, m3];
  const base = hlen + 4;
  for (let i = 0; i < n; i++) out[base + i] = payload[i] ^ mask[i & 3];
  return out;
}

const PONG_3 = () => clientFrame(1, "3");

// ---------------------------------------------------------------- counters

const stats = {
  delivered: 0, // "42..." text frames and binary frames received
  target: Infinity,
  onTarget: null,
};

function checkTarget() {
  if (stats.delivered >= stats.target && stats.onTarget) {
    const f = stats.onTarget;
    stats.onTarget = null;
    f(now());
  }
}

// Resolves with the time the delivered counter reaches `target`.
function waitDelivered(target, timeoutS) {
  stats.target = target;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stats.onTarget = null;
      reject(new Error(`timeout: ${stats.delivered}/${target} delivered after ${timeoutS}s`));
    }, timeoutS * 1000);
    stats.onTarget = (t) => {
      clearTimeout(timer);
      resolve(t);
    };
    checkTarget();
  });
}

function withTimeout(p, s, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Error(`timeout: ${what} after ${s}s`)), s * 1000);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------- a client

const HTTP_END = Buffer.from("\r\n\r\n");
const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const SYNC_FLUSH = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
let conns_open = 0;

class Conn {
  constructor() {
    this.state = 0; // 0 http, 1 waiting "0{", 2 waiting "40", 3 connected, 4 closed
    this.buf = null; // unparsed bytes (an incomplete frame header or small frame)
    this.skip = 0; // bytes of a counted frame still to skip
    this.msgs = 0; // "42" events received
    this.bins = 0; // binary frames received
    this.ackId = -1;
    this.ackResolve = null;
    this.nextAck = 1;
    this.onReady = null;
    this.onFail = null;
    this.closed = false;
  }

  open(port) {
    return new Promise((resolve, reject) => {
      this.onReady = resolve;
      this.onFail = reject;
      const sock = (this.sock = net.connect({ host: "127.0.0.1", port }));
      sock.setNoDelay(true);
      sock.on("connect", () => {
        conns_open++;
        const key = crypto.randomBytes(16).toString("base64");
        sock.write(
          `GET /socket.io/?EIO=${opts.eio}&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
            `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
            (opts.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits\r\n" : "") +
            `Sec-WebSocket-Version: 13\r\n\r\n`
        );
      });
      sock.on("data", (chunk) => this.onData(chunk));
      sock.on("error", (err) => this.fail(err));
      sock.on("close", () => {
        if (!this.closed) {
          this.closed = true;
          conns_open--;
        }
        this.fail(new Error("connection closed"));
      });
    });
  }

  fail(err) {
    if (this.state < 3 && this.onFail) {
      const f = this.onFail;
      this.onFail = null;
      this.onReady = null;
      f(err);
    }
    if (this.state === 3 && !this.expectClose) {
      stats.unexpectedCloses = (stats.unexpectedCloses || 0) + 1;
    }
    this.state = 4;
  }

  send(text) {
    this.sock.write(clientFrame(1, text));
  }

  // Sends an acked event; `json` is the argument array text, e.g. '["echo",1]'.
  emitWithAck(json, binary) {
    const id = this.nextAck++;
    return new Promise((resolve) => {
      this.ackId = id;
      this.ackResolve = resolve;
      if (binary) {
        this.sock.cork();
        this.sock.write(clientFrame(1, `451-${id}${json}`));
        this.sock.write(clientFrame(2, binary));
        this.sock.uncork();
      } else {
        this.send(`42${id}${json}`);
      }
    });
  }

  close() {
    this.expectClose = true;
    if (!this.sock.destroyed) {
      const body = Buffer.from([0x03, 0xe8]); // 1000, normal closure
      this.sock.end(clientFrame(8, body));
    }
  }

  onData(chunk) {
    if (this.state === 0) {
      this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
      const i = this.buf.indexOf(HTTP_END);
      if (i < 0) return;
      const head = this.buf.subarray(0, i).toString("latin1");
      if (!head.startsWith("HTTP/1.1 101")) {
        this.fail(new Error(`upgrade refused: ${head.split("\r\n")[0]}`));
        this.sock.destroy();
        return;
      }
      this.state = 1;
      const ext = /^sec-websocket-extensions:(.*)$/im.exec(head);
      if (ext && /permessage-deflate/i.test(ext[1])) {
        // server_no_context_takeover (asked for, and fastsio always uses it):
        // every message inflates on its own.
        if (!/server_no_context_takeover/i.test(ext[1])) {
          this.fail(new Error(`deflate without server_no_context_takeover: ${ext[1]}`));
          this.sock.destroy();
          return;
        }
        this.inflater = true;
        stats.deflateNegotiated = (stats.deflateNegotiated || 0) + 1;
      }
      chunk = this.buf.subarray(i + 4);
      this.buf = null;
      if (chunk.length === 0) return;
    }
    if (this.skip > 0) {
      if (chunk.length <= this.skip) {
        this.skip -= chunk.length;
        return;
      }
      chunk = chunk.subarray(this.skip);
      this.skip = 0;
    }
    if (this.buf !== null) {
      chunk = Buffer.concat([this.buf, chunk]);
      this.buf = null;
    }
    const len = chunk.length;
    let pos = 0;
    while (len - pos >= 2) {
      const op = chunk[pos] & 0x0f;
      let plen = chunk[pos + 1] & 0x7f;
      let start = pos + 2;
      if (plen === 126) {
        if (len - pos < 4) break;
        plen = chunk.readUInt16BE(pos + 2);
        start = pos + 4;
      } else if (plen === 127) {
        if (len - pos < 10) break;
        plen = Number(chunk.readBigUInt64BE(pos + 2));
        start = pos + 10;
      }
      const end = start + plen;
      if (end > len) {
        // A large frame that is only counted: classify it from its first
        // bytes and skip the rest as it arrives instead of buffering it.
        // (A compressed frame is kept whole: it must be inflated.)
        if (plen > 64 && len - start >= 4 && !(chunk[pos] & 0x40)) {
          this.onFrame(op, chunk, start, len, plen);
          this.skip = end - len;
          pos = len;
        }
        break;
      }
      if (chunk[pos] & 0x40 && this.inflater) {
        // RFC 7692: inflate payload + 00 00 ff ff.
        const raw = zlib.inflateRawSync(Buffer.concat([chunk.subarray(start, end), DEFLATE_TAIL]), SYNC_FLUSH);
        stats.inflated = (stats.inflated || 0) + 1;
        this.onFrame(op, raw, 0, raw.length, raw.length);
      } else {
        this.onFrame(op, chunk, start, end, plen);
      }
      pos = end;
    }
    if (pos < len) this.buf = Buffer.from(chunk.subarray(pos));
    checkTarget();
  }

  onFrame(op, b, s, e, plen) {
    if (op === 1) {
      const c0 = b[s];
      if (c0 === 0x34 /* 4: socket.io message */) {
        const c1 = b[s + 1];
        if (c1 === 0x32 /* 2: EVENT */) {
          this.msgs++;
          stats.delivered++;
          if (this.capture && e - s === plen) {
            this.capture = false;
            this.captured = b.toString("utf8", s, e);
          }
        } else if (c1 === 0x33 /* 3: ACK */) {
          let id = 0;
          let i = s + 2;
          while (i < e && b[i] >= 0x30 && b[i] <= 0x39) id = id * 10 + (b[i++] - 0x30);
          if (id === this.ackId && this.ackResolve) {
            const r = this.ackResolve;
            this.ackResolve = null;
            this.ackId = -1;
            r(b.toString("utf8", i, e));
          }
        } else if (c1 === 0x35 /* 5: BINARY_EVENT header, counted with its attachment */) {
          // nothing
        } else if (c1 === 0x30 /* 0: CONNECT */ && this.state === 2) {
          this.state = 3;
          const r = this.onReady;
          this.onReady = this.onFail = null;
          r(this);
        } else if (c1 === 0x34 /* 4: CONNECT_ERROR */) {
          this.fail(new Error(`connect_error: ${b.toString("utf8", s, e)}`));
        }
      } else if (c0 === 0x32 /* 2: engine.io ping */) {
        this.sock.write(PONG_3());
      } else if (c0 === 0x30 /* 0: engine.io open */ && this.state === 1) {
        this.state = 2;
        // Engine.IO v3: the server connects "/" by itself (socket.io v2 clients).
        if (opts.eio !== 3) this.send("40");
        else eio3Conns.push(this);
      } else if (c0 === 0x31 /* 1: engine.io close */) {
        this.fail(new Error("engine.io close"));
      }
    } else if (op === 2) {
      this.bins++;
      stats.delivered++;
      if (plen !== opts.attachmentBytes) stats.badBinary = (stats.badBinary || 0) + 1;
    } else if (op === 9) {
      this.sock.write(clientFrame(10, b.subarray(s, e)));
    } else if (op === 8) {
      this.fail(new Error("websocket close from server"));
      this.sock.end();
    }
  }
}

// Engine.IO v3: the client pings (every 15 s, under any server's pingInterval + pingTimeout).
const eio3Conns = [];
setInterval(() => {
  for (const c of eio3Conns) if (c.state === 3) c.send("2");
}, 15000).unref();

// ---------------------------------------------------------------- a polling client

const pollAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 100000 });

// Engine.IO v4 long-polling only: a GET loop, POSTs for what the client sends
// (one POST in flight at a time, queued packets joined with \x1e).
class PollConn {
  constructor() {
    this.state = 0;
    this.msgs = 0;
    this.bins = 0;
    this.ackId = -1;
    this.ackResolve = null;
    this.nextAck = 1;
    this.sid = null;
    this.outq = [];
    this.posting = false;
    this.closed = false;
    this.onReady = null;
    this.onFail = null;
  }

  request(method, body) {
    const sid = this.sid ? `&sid=${encodeURIComponent(this.sid)}` : "";
    const headers = body === undefined ? {} : { "Content-Type": "text/plain;charset=UTF-8", "Content-Length": Buffer.byteLength(body) };
    return new Promise((resolve, reject) => {
      const req = http.request(
        { agent: pollAgent, host: "127.0.0.1", port: this.port, method, path: `/socket.io/?EIO=4&transport=polling${sid}`, headers },
        (res) => {
          const parts = [];
          res.on("data", (d) => parts.push(d));
          res.on("end", () => {
            const text = Buffer.concat(parts).toString("utf8");
            if (res.statusCode !== 200) reject(new Error(`polling ${method} ${res.statusCode}: ${text.slice(0, 100)}`));
            else resolve(text);
          });
          res.on("error", reject);
        }
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  open(port) {
    this.port = port;
    return new Promise(async (resolve, reject) => {
      this.onReady = resolve;
      this.onFail = reject;
      try {
        const hs = await this.request("GET");
        if (hs[0] !== "0") throw new Error(`bad polling handshake ${hs.slice(0, 80)}`);
        this.sid = JSON.parse(hs.slice(1).split("\x1e")[0]).sid;
        this.state = 2;
        conns_open++;
        this.post("40");
        this.pollLoop();
      } catch (err) {
        this.fail(err);
      }
    });
  }

  async pollLoop() {
    while (!this.closed && this.state < 4) {
      let body;
      try {
        body = await this.request("GET");
      } catch (err) {
        if (!this.closed) this.fail(err);
        return;
      }
      this.onPayload(body);
    }
  }

  onPayload(body) {
    for (const p of body.split("\x1e")) this.onPacket(p);
    checkTarget();
  }

  onPacket(p) {
    const c0 = p.charCodeAt(0);
    if (c0 === 0x34 /* 4 */) {
      const c1 = p.charCodeAt(1);
      if (c1 === 0x32) {
        this.msgs++;
        stats.delivered++;
        if (this.capture) {
          this.capture = false;
          this.captured = p;
        }
      } else if (c1 === 0x33) {
        let i = 2;
        let id = 0;
        while (i < p.length && p.charCodeAt(i) >= 0x30 && p.charCodeAt(i) <= 0x39) id = id * 10 + (p.charCodeAt(i++) - 0x30);
        if (id === this.ackId && this.ackResolve) {
          const r = this.ackResolve;
          this.ackResolve = null;
          this.ackId = -1;
          r(p.slice(i));
        }
      } else if (c1 === 0x30 && this.state === 2) {
        this.state = 3;
        const r = this.onReady;
        this.onReady = this.onFail = null;
        r(this);
      } else if (c1 === 0x34) {
        this.fail(new Error(`connect_error: ${p}`));
      }
    } else if (c0 === 0x32 /* ping */) {
      this.post("3");
    } else if (c0 === 0x31 /* close */) {
      this.fail(new Error("engine.io close"));
    }
  }

  post(text) {
    this.outq.push(text);
    if (!this.posting) this.flushPosts();
  }

  async flushPosts() {
    this.posting = true;
    try {
      while (this.outq.length && !this.closed) {
        const body = this.outq.join("\x1e");
        this.outq = [];
        await this.request("POST", body);
      }
    } catch (err) {
      if (!this.closed) this.fail(err);
    }
    this.posting = false;
  }

  fail(err) {
    if (this.state < 3 && this.onFail) {
      const f = this.onFail;
      this.onFail = null;
      this.onReady = null;
      f(err);
    }
    if (this.state === 3 && !this.expectClose) stats.unexpectedCloses = (stats.unexpectedCloses || 0) + 1;
    this.state = 4;
  }

  emitWithAck(json, binary) {
    if (binary) throw new Error("binary attachments are not implemented for the polling client");
    const id = this.nextAck++;
    return new Promise((resolve) => {
      this.ackId = id;
      this.ackResolve = resolve;
      this.post(`42${id}${json}`);
    });
  }

  close() {
    this.expectClose = true;
    if (this.state === 3 && !this.closed) {
      this.closed = true;
      this.request("POST", "1").catch(() => {});
    }
    this.closed = true;
  }
}

async function connectMany(n, concurrency, into) {
  let started = 0;
  const worker = async () => {
    while (started < n) {
      started++;
      const c = opts.transport === "polling" ? new PollConn() : new Conn();
      await withTimeout(c.open(opts.port), opts.timeout, "connect");
      into.push(c);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

function sameJson(a, b) {
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return false;
  }
}

function withoutOffset(text) {
  // With connection state recovery on, the last argument is the offset (a string).
  if (!opts.offset || typeof text !== "string") return text;
  try {
    const arr = JSON.parse(text);
    if (!Array.isArray(arr) || typeof arr[arr.length - 1] !== "string") return null;
    return JSON.stringify(arr.slice(0, -1));
  } catch {
    return null;
  }
}

function payloadJson(bytes) {
  // A ~`bytes`-byte JSON object, like a small chat message.
  const base = { id: 123456, user: "bench-user", room: "all", ts: 1700000000000, text: "" };
  const fixed = JSON.stringify(base).length;
  base.text = "x".repeat(Math.max(0, bytes - fixed));
  return JSON.stringify(base);
}

function perClient(conns, field) {
  let min = Infinity;
  let max = 0;
  for (const c of conns) {
    const v = c[field];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

function resetCounts(conns) {
  for (const c of conns) c.msgs = c.bins = 0;
  stats.delivered = 0;
}

// ---------------------------------------------------------------- scenarios

// Connects `n` clients; RSS is sampled after a small warm group and after all,
// once idle, so the per-client figure excludes one-time costs.
async function connectClients(n, result) {
  const conns = [];
  const warm = Math.min(50, Math.max(1, Math.floor(n / 10)));
  const phase = new Phase();
  await connectMany(warm, opts.connectConcurrency, conns);
  await sleep(300);
  const rssA = serverRss();
  await connectMany(n - warm, opts.connectConcurrency, conns);
  const end = now();
  const p = await phase.stop(end, 0);
  await sleep(opts.settle);
  const rssB = serverRss();
  result.connect = { clients: n, ...p, connects_per_s: n / p.wall_s };
  result.memory = {
    clients: n,
    rss_before: rssA,
    rss_after: rssB,
    rss_per_client: (rssB - rssA) / (n - warm),
  };
  log(`${n} clients connected in ${p.wall_s.toFixed(2)}s, RSS ${(rssB / 1e6).toFixed(1)} MB`);
  return conns;
}

// Sends bcast(n) and waits for every delivery and the ack; repeats (up to
// --max-bursts) until the phase has lasted --min-seconds, so that fast servers
// are measured over more than a few CPU-time ticks.
async function burst(conns, n, json, binary, result, key, repeat = true) {
  const sender = conns[0];
  resetCounts(conns);
  const args = binary ? `["bcast",${n},{"_placeholder":true,"num":0}]` : `["bcast",${n},${json}]`;
  const phase = new Phase();
  let bursts = 0;
  let tDone = now();
  do {
    const ack = sender.emitWithAck(args, binary);
    tDone = await waitDelivered(conns.length * n * (bursts + 1), opts.timeout);
    await withTimeout(ack, opts.timeout, "bcast ack");
    bursts++;
  } while (repeat && bursts < opts.maxBursts && tDone - phase.t0 < opts.minSeconds);
  const expected = conns.length * n * bursts;
  const p = await phase.stop(tDone);
  const field = binary ? "bins" : "msgs";
  const pc = perClient(conns, field);
  const r = {
    clients: conns.length,
    n,
    bursts,
    delivered: stats.delivered,
    complete: pc.min === n * bursts && pc.max === n * bursts && stats.delivered === expected,
    ...p,
    msgs_per_s: expected / p.wall_s,
    cpu_us_per_msg: p.server_cpu_us / expected,
  };
  if (binary) r.mb_per_s = (expected * binary.length) / p.wall_s / 1e6;
  if (key) result[key] = r;
  return r;
}

async function singles(conns, rounds, json, result) {
  const sender = conns[0];
  const n = conns.length;
  resetCounts(conns);
  const lat = [];
  const phase = new Phase();
  const deadline = now() + (opts.maxSeconds || opts.timeout);
  let done = 0;
  let tEnd = now();
  for (let i = 0; i < rounds && now() < deadline; i++) {
    const t0 = now();
    const ack = sender.emitWithAck(`["bcast",1,${json}]`);
    tEnd = await waitDelivered(n * (i + 1), opts.timeout);
    await withTimeout(ack, opts.timeout, "bcast ack");
    lat.push(now() - t0);
    done++;
  }
  const p = await phase.stop(tEnd);
  const delivered = n * done;
  const pc = perClient(conns, "msgs");
  lat.sort((a, b) => a - b);
  result.single = {
    clients: n,
    rounds: done,
    requested_rounds: rounds,
    delivered,
    complete: pc.min === done && pc.max === done,
    ...p,
    msgs_per_s: delivered / p.wall_s,
    cpu_us_per_msg: p.server_cpu_us / delivered,
    round_p50_ms: lat[Math.floor(lat.length / 2)] * 1e3,
  };
}

// The burst size to use: the requested one, or fewer broadcasts when the
// warm-up rate says the burst would take over --max-seconds (slow servers at
// many clients), so that a run stays bounded in time.
function burstSize(result, requested, clients) {
  const rate = result.warmup && result.warmup.msgs_per_s;
  if (!opts.maxSeconds || !rate) return requested;
  const fit = Math.floor((opts.maxSeconds * rate) / clients);
  return Math.max(1, Math.min(requested, fit));
}

async function scenarioFanout(result) {
  const conns = await connectClients(opts.clients, result);
  const json = payloadJson(opts.payloadBytes);
  result.payload_bytes = json.length;
  // The first message one client gets is decoded and compared once, so a
  // server that counts right but sends the wrong thing cannot pass.
  conns[conns.length - 1].capture = true;
  if (opts.warmup) await burst(conns, opts.warmup, json, null, result, "warmup", false);
  const got = conns[conns.length - 1].captured;
  if (opts.warmup && !sameJson(withoutOffset(got && got.slice(2)), `["msg",${json}]`)) {
    throw new Error(`unexpected message: ${String(got).slice(0, 120)}`);
  }
  if (opts.burst) {
    const n = burstSize(result, opts.burst, conns.length);
    await burst(conns, n, json, null, result, "burst");
    result.burst.requested_n = opts.burst;
    log(`burst: ${Math.round(result.burst.msgs_per_s)} msgs/s, ${result.burst.cpu_us_per_msg.toFixed(3)} us/msg`);
  }
  if (opts.singles) {
    await singles(conns, opts.singles, json, result);
    log(`single: ${Math.round(result.single.msgs_per_s)} msgs/s, ${result.single.cpu_us_per_msg.toFixed(3)} us/msg`);
  }
  return conns;
}

async function scenarioBinary(result) {
  const conns = await connectClients(opts.clients, result);
  const bin = crypto.randomBytes(opts.attachmentBytes);
  result.attachment_bytes = bin.length;
  if (opts.warmup) await burst(conns, opts.warmup, null, bin, result, "warmup", false);
  const n = burstSize(result, opts.burst, conns.length);
  await burst(conns, n, null, bin, result, "burst");
  result.burst.requested_n = opts.burst;
  if (stats.badBinary) throw new Error(`${stats.badBinary} attachments of the wrong size`);
  log(`binary: ${Math.round(result.burst.msgs_per_s)} msgs/s, ${result.burst.mb_per_s.toFixed(0)} MB/s`);
  return conns;
}

async function scenarioEcho(result) {
  const conns = [];
  await connectMany(opts.clients, opts.connectConcurrency, conns);
  const json = payloadJson(opts.payloadBytes);
  result.payload_bytes = json.length;
  const run = async (count, lat) => {
    const deadline = now() + opts.timeout;
    await Promise.all(
      conns.map(async (c) => {
        for (let i = 0; i < count && now() < deadline; i++) {
          const t0 = process.hrtime.bigint();
          const reply = await c.emitWithAck(`["echo",${json}]`);
          if (lat) lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
          if (i === 0 && !sameJson(reply, `[${json}]`)) throw new Error(`bad echo reply ${reply.slice(0, 80)}`);
        }
      })
    );
  };
  // One watchdog per run rather than a timer per round trip.
  await withTimeout(run(opts.warmup, null), opts.timeout + 30, "echo warm-up");
  const lat = [];
  const phase = new Phase();
  await withTimeout(run(opts.perClient, lat), opts.timeout + 30, "echo");
  const p = await phase.stop(now());
  lat.sort((a, b) => a - b);
  const q = (f) => lat[Math.min(lat.length - 1, Math.floor(lat.length * f))];
  result.echo = {
    clients: conns.length,
    round_trips: lat.length,
    ...p,
    rt_per_s: lat.length / p.wall_s,
    p50_ms: q(0.5),
    p99_ms: q(0.99),
    cpu_us_per_rt: p.server_cpu_us / lat.length,
  };
  log(`echo: ${Math.round(result.echo.rt_per_s)} rt/s p50 ${q(0.5).toFixed(3)} ms p99 ${q(0.99).toFixed(3)} ms`);
  return conns;
}

async function scenarioConnect(result) {
  // Warm-up: a few connects so one-time costs stay out of the figure.
  const warm = [];
  await connectMany(Math.min(50, opts.total), opts.concurrency, warm);
  for (const c of warm) c.close();
  await sleep(500);
  let started = 0;
  let done = 0;
  let tEnd = now();
  const deadline = now() + opts.timeout;
  const phase = new Phase();
  const worker = async () => {
    while (started < opts.total && now() < deadline) {
      started++;
      const c = new Conn();
      await withTimeout(c.open(opts.port), 30, "connect");
      done++;
      tEnd = now();
      c.close();
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  // Settle so the server's work on the last closes is counted too.
  const p = await phase.stop(tEnd, 500);
  result.connect_rate = {
    concurrency: opts.concurrency,
    connects: done,
    ...p,
    connects_per_s: done / p.wall_s,
    cpu_us_per_connect: p.server_cpu_us / done,
  };
  log(`connect: ${Math.round(result.connect_rate.connects_per_s)} /s, ${Math.round(result.connect_rate.cpu_us_per_connect)} us cpu each`);
  return [];
}

async function main() {
  const result = { scenario: opts.scenario, options: opts, ok: true };
  let conns = [];
  const hardStop = setTimeout(() => {
    console.log(JSON.stringify({ ...result, ok: false, error: "loadgen hard timeout" }));
    process.exit(1);
  }, (opts.timeout * 4 + 120) * 1000);
  try {
    const fn = { fanout: scenarioFanout, binary: scenarioBinary, echo: scenarioEcho, connect: scenarioConnect }[
      opts.scenario
    ];
    if (!fn) throw new Error(`unknown scenario ${opts.scenario}`);
    conns = await fn(result);
    result.unexpected_closes = stats.unexpectedCloses || 0;
    result.client = { transport: opts.transport, eio: opts.eio, deflate_offered: !!opts.deflate,
      deflate_negotiated: stats.deflateNegotiated || 0, frames_inflated: stats.inflated || 0 };
  } catch (err) {
    result.ok = false;
    result.error = String(err && err.message ? err.message : err);
    log("error:", result.error);
  }
  result.server_rss_end = serverRss();
  for (const c of conns) c.close();
  clearTimeout(hardStop);
  console.log(JSON.stringify(result));
  setTimeout(() => {
    pollAgent.destroy();
    process.exit(result.ok ? 0 : 1);
  }, 200);
}

main();
