// A swarm of raw Socket.IO clients for the soak (bench/soak/soak.py runs one or more).
//
//   node bench/soak/clients.js --port 3000 --n 5000 [--ws-frac 0.6] [--upgrade-frac 0.2]
//        [--churn-frac 0.25] [--churn-period 15] [--stopped 50] [--heavy-fast 20]
//
// WebSocket, polling and polling->WebSocket upgrade clients speak Engine.IO v4 /
// Socket.IO v5 text framing over net and http themselves (no client library per
// connection). Every connection checks that the "b" and "h" broadcasts it receives
// are consecutive sequence numbers (no gap, no reordering, across an upgrade too).
// Churners close (or drop) their connection every ~churn-period seconds and come
// back on a random transport; "stopped" clients (in room heavy) stop reading once
// connected; "heavy-fast" clients are in room heavy and read everything.
//
// Commands on stdin, one per line: "report" prints the counters; "storm" cuts
// every connection at once and reconnects them all, then prints how long it took
// and how many attempts were refused; "quit" exits. Output: one JSON line each.
"use strict";
const net = require("net");
const http = require("http");
const crypto = require("crypto");
const readline = require("readline");

const opts = {
  port: 3000, n: 1000, wsFrac: 0.6, upgradeFrac: 0.2, churnFrac: 0.25, churnPeriod: 15,
  stopped: 0, heavyFast: 0, concurrency: 200, tag: "0",
};
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, "").replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  if (!(key in opts)) { console.error(`unknown option ${process.argv[i]}`); process.exit(2); }
  const v = process.argv[i + 1];
  opts[key] = typeof opts[key] === "number" ? Number(v) : v;
}
const out = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, tag: opts.tag, ...fields }) + "\n");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()) / 1e9;
// (no agent-wide socket timeout: Node applies it to a connection still connecting,
// so a SYN retried under a connect burst would fail a request after it)
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 4096 });
const BASE = "/socket.io/?EIO=4";

const totals = {
  connects: 0, refused: 0, lost: 0, churns: 0, upgrades: 0, probe_failed: 0,
  b_gaps: 0, h_gaps: 0, v: 0, errors: {},
};
function countError(kind) { totals.errors[kind] = (totals.errors[kind] || 0) + 1; }

// ------------------------------------------------------------------ WebSocket frames

function clientFrame(opcode, text) {
  const payload = typeof text === "string" ? Buffer.from(text) : text;
  const n = payload.length;
  const hlen = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const f = Buffer.allocUnsafe(hlen + 4 + n);
  f[0] = 0x80 | opcode;
  if (n < 126) f[1] = 0x80 | n;
  else if (n < 65536) { f[1] = 0x80 | 126; f.writeUInt16BE(n, 2); }
  else { f[1] = 0x80 | 127; f.writeBigUInt64BE(BigInt(n), 2); }
  const m = crypto.randomBytes(4);
  m.copy(f, hlen);
  for (let i = 0; i < n; i++) f[hlen + 4 + i] = payload[i] ^ m[i & 3];
  return f;
}

class WsConn {
  // onText(str), onClose(reason)
  constructor(path, onOpen, onText, onClose) {
    this.buf = null;
    this.open = false;
    this.done = false;
    const sock = (this.sock = net.connect({ host: "127.0.0.1", port: opts.port }));
    sock.setNoDelay(true);
    sock.on("connect", () => {
      sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    sock.on("data", (chunk) => {
      this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
      if (!this.open) {
        const i = this.buf.indexOf("\r\n\r\n");
        if (i < 0) return;
        const head = this.buf.subarray(0, i).toString("latin1");
        this.buf = this.buf.subarray(i + 4);
        if (!head.startsWith("HTTP/1.1 101")) { this.end(`refused ${head.split("\r\n")[0]}`); return; }
        this.open = true;
        onOpen();
      }
      this.parse(onText);
    });
    sock.on("error", (e) => this.end(`error ${e.code || e.message}`));
    sock.on("close", () => this.end("closed"));
    this.onClose = onClose;
  }
  parse(onText) {
    let b = this.buf;
    let pos = 0;
    while (b.length - pos >= 2) {
      const op = b[pos] & 0x0f;
      let len = b[pos + 1] & 0x7f;
      let start = pos + 2;
      if (len === 126) { if (b.length - pos < 4) break; len = b.readUInt16BE(pos + 2); start = pos + 4; }
      else if (len === 127) { if (b.length - pos < 10) break; len = Number(b.readBigUInt64BE(pos + 2)); start = pos + 10; }
      if (start + len > b.length) break;
      const payload = b.subarray(start, start + len);
      pos = start + len;
      if (this.done) return;
      if (op === 1) { onText(payload.toString("utf8")); if (this.done) return; }
      else if (op === 9) this.sock.write(clientFrame(10, payload));
      else if (op === 8) { this.end("close frame"); return; }
    }
    this.buf = pos < b.length ? b.subarray(pos) : null;
  }
  send(text) { if (!this.done) this.sock.write(clientFrame(1, text)); }
  close() { if (!this.done) { this.sock.end(clientFrame(8, Buffer.from([0x03, 0xe8]))); } }
  destroy() { this.done = true; this.onClose = null; this.sock.destroy(); }
  end(reason) {
    if (this.done) return;
    this.done = true;
    this.sock.destroy();
    if (this.onClose) this.onClose(reason);
  }
}

// ------------------------------------------------------------------ HTTP polling

// As browsers do (and Node's docs advise, see request.reusedSocket): a request that
// meets a reset on a reused keep-alive connection (the server closed it as idle
// while the request was on its way) is sent again, once, on a new connection (not
// from the pool: pooled connections freed at the same moment expire together).
function request(method, path, body, holder = null) {
  return requestOnce(method, path, body, holder, agent).catch((e) => {
    if (e.reused && !e.ours && (e.code === "ECONNRESET" || e.code === "EPIPE")) {
      totals.keepalive_retries = (totals.keepalive_retries || 0) + 1;
      return requestOnce(method, path, body, holder, false);
    }
    throw e;
  });
}

// Abandons a request still in flight (never one already answered: its socket may
// be carrying another request by now); no retry follows.
function dropRequest(req) {
  if (req && !req._done) { req._ours = true; req.destroy(); }
}

function requestOnce(method, path, body, holder, via) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: opts.port, method, path, agent: via,
      headers: body !== undefined ? { "Content-Type": "text/plain;charset=UTF-8", "Content-Length": Buffer.byteLength(body) } : {} },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          // answered: its socket goes back to the pool and may carry another request at
          // once, so this request must not be destroyed any more (see dropRequest)
          req._done = true;
          if (holder && holder.getReq === req) holder.getReq = null;
          resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString("utf8") });
        });
        res.on("error", reject);
      });
    if (holder) holder.getReq = req;
    req.setTimeout(90000, () => req.destroy(new Error("timeout")));
    req.on("error", (e) => { e.reused = req.reusedSocket; e.ours = req._ours === true; reject(e); });
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// ------------------------------------------------------------------ a client

const EVENT_RE = /^42\["([bhv])",(\d+)/;
let nextId = 0;

class Client {
  constructor(mode, role) {
    this.id = nextId++;
    this.mode = mode;          // ws | polling | upgrade
    this.role = role;          // stable | churn | stopped | heavyfast
    this.state = "idle";       // idle | connecting | connected | closed
    this.life = null;
    this.lives = 0;
    this.finished = [];        // summaries of past connections (churners)
  }

  heavy() { return this.role === "stopped" || this.role === "heavyfast"; }

  newLife() {
    this.life = { b_first: -1, b_last: -1, h_first: -1, h_last: -1, b_gaps: 0, h_gaps: 0, b_n: 0, h_n: 0, t0: now() };
    this.lives++;
  }

  onPacket(p) {
    // a client that stopped reading answers nothing more (no pong either)
    if (this.role === "stopped" && this.state === "connected") return;
    const c = p.charCodeAt(0);
    if (c === 0x32 /* ping */) { this.sendEio("3"); return; }
    if (c === 0x31 /* close */) { this.lost("engine.io close"); return; }
    if (c !== 0x34) return;   // noop / open handled elsewhere
    const t = p.charCodeAt(1);
    if (t === 0x30 && this.state === "connecting") {
      this.state = "connected";
      totals.connects++;
      this.newLife();
      if (this.onConnected) { const f = this.onConnected; this.onConnected = null; f(); }
      // stop reading: a WebSocket leaves its socket unread, a polling client sends no more GETs
      // (after saying so: the server then puts it in the heavy room and the sink)
      if (this.role === "stopped") {
        this.sendEio('42["stopped"]');
        if (this.ws) this.ws.sock.pause(); else this.polling = false;
      }
      return;
    }
    if (t === 0x34) { this.lost(`connect_error ${p.slice(0, 80)}`); return; }
    if (t === 0x31) { this.lost("io server disconnect"); return; }
    if (t !== 0x32) return;
    const m = EVENT_RE.exec(p.length > 40 ? p.slice(0, 40) : p);
    if (!m || !this.life) return;
    const n = Number(m[2]);
    const L = this.life;
    if (m[1] === "b") {
      if (L.b_last >= 0 && n !== L.b_last + 1) { L.b_gaps++; totals.b_gaps++; this.noteGap("b", L.b_last + 1, n); }
      if (L.b_first < 0) L.b_first = n;
      L.b_last = n; L.b_n++;
    } else if (m[1] === "h") {
      if (L.h_last >= 0 && n !== L.h_last + 1) { L.h_gaps++; totals.h_gaps++; this.noteGap("h", L.h_last + 1, n); }
      if (L.h_first < 0) L.h_first = n;
      L.h_last = n; L.h_n++;
    } else totals.v++;
  }

  // the first gaps seen, with what the connection was doing (for the report)
  noteGap(kind, expected, got) {
    if (gapSamples.length >= 20) return;
    gapSamples.push({ kind, expected, got, role: this.role, mode: this.mode, transport: this.transport,
      upgraded: this.upgradedAt !== undefined, since_upgrade_s: this.upgradedAt !== undefined ? Math.round((now() - this.upgradedAt) * 1000) / 1000 : null,
      probing: this.probing, life_s: Math.round((now() - this.life.t0) * 1000) / 1000, lives: this.lives });
  }

  sendEio(text) {
    if (this.ws && this.transport === "websocket") this.ws.send(text);
    else if (this.sid) request("POST", `${BASE}&transport=polling&sid=${this.sid}`, text).catch(() => {});
  }

  // Resolves once connected to "/", rejects on refusal.
  connect(mode) {
    if (mode) this.mode = mode;
    // An attempt given up by its deadline may still answer later (a handshake the
    // server was slow to reach): its answers must not touch the attempt after it, or
    // the client would read two sessions at once (every broadcast twice) or be failed
    // by the old attempt's error. Each attempt has its number; late ones are ignored.
    const attempt = (this.attempt = (this.attempt || 0) + 1);
    const current = () => this.attempt === attempt;
    this.state = "connecting";
    this.sid = null;
    this.ws = null;
    this.transport = null;
    this.polling = false;
    this.probing = false;
    this.afterPoll = null;
    this.upgradedAt = undefined;
    const q = (this.heavy() ? "&heavy=1" : "") + (this.role === "stopped" ? "&stopped=1" : "");
    return new Promise((resolve, reject) => {
      this.onConnected = resolve;
      this.onRefused = reject;
      if (this.mode === "ws") {
        this.transport = "websocket";
        const ws = (this.ws = new WsConn(`${BASE}&transport=websocket${q}`, () => {}, (text) => {
          if (this.ws !== ws) return;
          if (text[0] === "0") { ws.send("40"); return; }
          this.onPacket(text);
        }, (reason) => { if (this.ws === ws) this.lost(reason); }));
      } else {
        this.transport = "polling";
        request("GET", `${BASE}&transport=polling${q}`).then((res) => {
          if (!current()) {
            // the late session of a given-up attempt: closed at once, as a client that left
            if (res.status === 200 && res.body[0] === "0") {
              request("POST", `${BASE}&transport=polling&sid=${JSON.parse(res.body.slice(1)).sid}`, "1").catch(() => {});
              totals.late_handshakes = (totals.late_handshakes || 0) + 1;
            }
            return;
          }
          if (res.status !== 200 || res.body[0] !== "0") { this.lost(`handshake ${res.status} ${res.body.slice(0, 60)}`); return; }
          this.sid = JSON.parse(res.body.slice(1)).sid;
          this.polling = true;
          return request("POST", `${BASE}&transport=polling&sid=${this.sid}`, "40").then(() => { if (current()) this.pollLoop(); });
        }).catch((e) => { if (current()) this.lost(`http ${e.code || e.message} ${e.reused ? "reused-connection" : "new-connection"}`); });
      }
    }).then(() => {
      if (this.mode === "upgrade") this.upgrade();
    });
  }

  async pollLoop() {
    // one GET at a time: a second one would be an overlap, which ends the session
    if (this.pollActive) return;
    this.pollActive = true;
    try { await this.pollGets(); } finally { this.pollActive = false; }
    const after = this.afterPoll;
    if (after) { this.afterPoll = null; after(); return; }
    if (this.polling && this.sid && !this.probing) this.pollLoop();
  }

  async pollGets() {
    const sid = this.sid;
    while (this.polling && this.sid === sid && !this.probing) {
      let res;
      try {
        res = await request("GET", `${BASE}&transport=polling&sid=${sid}`, undefined, this);
      } catch (e) {
        if (this.sid === sid && this.polling) this.lost(`poll ${e.code || e.message} ${e.reused ? "reused-connection" : "new-connection"}`);
        return;
      }
      if (this.sid !== sid) return;
      if (res.status !== 200) { if (this.polling) this.lost(`poll ${res.status} ${res.body.slice(0, 60)}`); return; }
      for (const p of res.body.split("\x1e")) {
        if (this.sid !== sid) return;
        this.onPacket(p);
      }
    }
  }

  upgrade() {
    const sid = this.sid;
    this.probing = true;
    const ws = new WsConn(`${BASE}&transport=websocket&sid=${sid}`, () => ws.send("2probe"), (text) => {
      if (text === "3probe") {
        // As engine.io-client: polling pauses first (no new GET; the one in flight
        // returns, the server answers it with a noop), then "5" switches transports.
        // Sending "5" with a GET still in flight would let that GET's packets be
        // read after the first ones over the WebSocket (out of order).
        const finish = () => {
          if (this.sid !== sid || this.state !== "connected") return;
          ws.send("5");
          this.ws = ws;
          this.transport = "websocket";
          this.polling = false;
          this.upgradedAt = now();
          totals.upgrades++;
        };
        if (this.pollActive) this.afterPoll = finish; else finish();
        return;
      }
      if (this.transport === "websocket") this.onPacket(text);
      else totals.ws_before_upgrade = (totals.ws_before_upgrade || 0) + 1;   // the server must not send there yet
    }, (reason) => {
      if (this.transport === "websocket" && this.ws === ws) this.lost(reason);
      else if (this.sid === sid && this.state === "connected") {
        totals.probe_failed++;
        this.probing = false;
        this.pollLoop();
      }
    });
  }

  lost(reason) {
    if (this.state === "closed" || this.state === "idle") return;
    const was = this.state;
    this.finish();
    if (was === "connecting") {
      if (reason === "connect timeout") totals.timeouts = (totals.timeouts || 0) + 1;
      else totals.refused++;
      countError(`${this.role} ${this.mode} connecting: ${reason.split(" ").slice(0, 3).join(" ")}`);
      const f = this.onRefused;
      this.onRefused = this.onConnected = null;
      if (f) f(new Error(reason));
      return;
    }
    if (!this.expectClose) {
      totals.lost++;
      countError(`${this.role} ${this.transport}: ${reason.split(" ").slice(0, reason.startsWith("poll 4") ? 8 : 3).join(" ")}`);
    }
  }

  finish() {
    this.state = "closed";
    this.polling = false;
    this.probing = false;
    const ws = this.ws;
    this.ws = null;
    this.sid = null;
    if (ws) ws.destroy();
    // the long poll of the connection that ends goes too (else the next connection waits for it)
    const get = this.getReq;
    this.getReq = null;
    dropRequest(get);
    if (this.life) { this.finished.push(this.life); this.life = null; }
  }

  // a clean close (or, abrupt, just the TCP connection dropped)
  leave(abrupt) {
    this.expectClose = true;
    if (this.transport === "websocket" && this.ws) {
      if (abrupt) this.ws.destroy(); else { this.ws.send("41"); this.ws.close(); }
    } else if (this.sid && !abrupt) {
      // as engine.io-client: the close packets go first; the server then ends the long
      // poll itself (the GET is dropped only if it is still there once the POST is answered)
      const get = this.getReq;
      this.getReq = null;
      const drop = () => dropRequest(get);
      request("POST", `${BASE}&transport=polling&sid=${this.sid}`, "41\x1e1").then(drop, drop);
    }
    this.finish();
    this.expectClose = false;
  }
}

// ------------------------------------------------------------------ the swarm

const clients = [];
const gapSamples = [];
function makeClients() {
  const n = opts.n;
  const nStopped = Math.min(opts.stopped, n);
  const nHeavy = Math.min(opts.heavyFast, n - nStopped);
  const nChurn = Math.floor(n * opts.churnFrac);
  for (let i = 0; i < n; i++) {
    let role = "stable";
    if (i < nStopped) role = "stopped";
    else if (i < nStopped + nHeavy) role = "heavyfast";
    else if (i < nStopped + nHeavy + nChurn) role = "churn";
    let mode;
    if (role === "stopped") mode = i % 2 === 0 ? "ws" : "polling";
    else if (role === "heavyfast") mode = "ws";
    else {
      const r = (i * 0.618033988749895) % 1;   // spread evenly, deterministic
      mode = r < opts.wsFrac ? "ws" : r < opts.wsFrac + opts.upgradeFrac ? "upgrade" : "polling";
    }
    clients.push(new Client(mode, role));
  }
}

async function connectAll(list, jitterMs) {
  let i = 0;
  const worker = async () => {
    while (i < list.length) {
      const c = list[i++];
      if (jitterMs) await sleep(Math.random() * jitterMs);
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          await withDeadline(c, c.connect(), 30000);
          break;
        } catch (e) {
          await sleep(100 + Math.random() * 200);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, list.length) }, worker));
}

// an attempt that neither connects nor fails within `ms` (a lost SYN, a stuck poll) is a refusal
function withDeadline(c, p, ms) {
  let timer;
  return Promise.race([p, new Promise((_, reject) => {
    timer = setTimeout(() => { c.lost("connect timeout"); reject(new Error("connect timeout")); }, ms);
  })]).finally(() => clearTimeout(timer));
}

let churning = false;
async function churnLoop(c) {
  const modes = ["ws", "polling", "upgrade"];
  while (churning) {
    await sleep((0.5 + Math.random()) * opts.churnPeriod * 1000);
    if (!churning) return;
    if (c.state !== "connected") continue;
    c.leave(Math.random() < 0.25);
    totals.churns++;
    await sleep(50 + Math.random() * 500);
    if (!churning) return;
    for (let attempt = 0; attempt < 20; attempt++) {
      try { await withDeadline(c, c.connect(modes[Math.floor(Math.random() * 3)]), 30000); break; } catch (e) { await sleep(200); }
    }
  }
}

// how late this process's event loop ran (a starved client answers pings late, reads late)
const lag = { max_s: 0, over_1s: 0 };
let lagLast = now();
setInterval(() => {
  const t = now();
  const d = t - lagLast - 0.1;
  if (d > lag.max_s) lag.max_s = Math.round(d * 1000) / 1000;
  if (d > 1) lag.over_1s++;
  lagLast = t;
}, 100).unref();

function report() {
  const stable = { count: 0, connected: 0, b_first_max: -1, b_last_min: Infinity, b_last_max: -1, b_gaps: 0, b_n_min: Infinity,
    lost: 0, lives_max: 0, transports: {} };
  const heavy = { count: 0, connected: 0, h_last_min: Infinity, h_last_max: -1, h_gaps: 0 };
  const churn = { count: 0, lives: 0, b_gaps: 0, connected: 0 };
  const stopped = { count: 0, connected_client_side: 0 };
  for (const c of clients) {
    const L = c.life;
    if (c.role === "stable" || c.role === "heavyfast") {
      stable.count++;
      stable.lives_max = Math.max(stable.lives_max, c.lives);
      if (c.state === "connected" && L) {
        stable.connected++;
        stable.transports[c.transport] = (stable.transports[c.transport] || 0) + 1;
        stable.b_first_max = Math.max(stable.b_first_max, L.b_first);
        stable.b_last_min = Math.min(stable.b_last_min, L.b_last);
        stable.b_last_max = Math.max(stable.b_last_max, L.b_last);
        stable.b_gaps += L.b_gaps;
        stable.b_n_min = Math.min(stable.b_n_min, L.b_n);
      }
      if (c.role === "heavyfast") {
        heavy.count++;
        if (c.state === "connected" && L) {
          heavy.connected++;
          heavy.h_last_min = Math.min(heavy.h_last_min, L.h_last);
          heavy.h_last_max = Math.max(heavy.h_last_max, L.h_last);
          heavy.h_gaps += L.h_gaps;
        }
      }
    } else if (c.role === "churn") {
      churn.count++;
      churn.lives += c.lives;
      if (c.state === "connected") churn.connected++;
      for (const l of c.finished.concat(L ? [L] : [])) churn.b_gaps += l.b_gaps;
    } else {
      stopped.count++;
      if (c.state === "connected") stopped.connected_client_side++;
    }
  }
  for (const o of [stable, heavy]) for (const k of Object.keys(o)) if (o[k] === Infinity) o[k] = -1;
  out("report", { totals, stable, heavy, churn, stopped, lag, gap_samples: gapSamples, mem_mib: Math.round(process.memoryUsage().rss / 1048576) });
}

async function storm() {
  churning = false;
  const live = clients.filter((c) => c.role !== "stopped");
  const refusedBefore = totals.refused;
  const timeoutsBefore = totals.timeouts || 0;
  for (const c of clients) { c.expectClose = true; c.finish(); c.expectClose = false; }
  agent.destroy();
  const t0 = now();
  // like socket.io-client's first reconnection attempt: within a second, randomized
  await connectAll(live, 1000);
  const seconds = now() - t0;
  const connected = live.filter((c) => c.state === "connected").length;
  out("storm", { seconds: Math.round(seconds * 1000) / 1000, clients: live.length, connected, refused: totals.refused - refusedBefore,
    timeouts: (totals.timeouts || 0) - timeoutsBefore, errors: totals.errors });
}

async function main() {
  makeClients();
  const progress = setInterval(() => {
    const n = clients.filter((c) => c.state === "connected").length;
    process.stderr.write(`[clients ${opts.tag}] ${n}/${clients.length} connected, refused ${totals.refused}, lost ${totals.lost} ${JSON.stringify(totals.errors)}\n`);
  }, 5000);
  progress.unref();
  const t0 = now();
  await connectAll(clients, 0);
  out("ready", { connected: clients.filter((c) => c.state === "connected").length, n: clients.length,
    seconds: Math.round((now() - t0) * 1000) / 1000 });
  churning = true;
  for (const c of clients) if (c.role === "churn") churnLoop(c);
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", async (line) => {
    const cmd = line.trim();
    if (cmd === "report") report();
    else if (cmd === "stop-churn") { churning = false; out("churn-stopped"); }
    else if (cmd === "storm") await storm();
    else if (cmd === "quit") { for (const c of clients) { c.expectClose = true; c.finish(); } process.stdout.write("", () => process.exit(0)); }
  });
  rl.on("close", () => process.exit(0));
}

main().catch((e) => { out("fail", { message: String(e && e.stack || e) }); process.exit(1); });
