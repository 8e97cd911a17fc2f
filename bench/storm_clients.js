// Light reconnect-storm clients for bench/streams_recovery.py (--driver raw):
// N Socket.IO v4 clients over raw TCP that speak WebSocket + Engine.IO v4 +
// Socket.IO v5 text framing themselves, with socket.io-client's recovery
// (the CONNECT of a reconnect carries the last pid and offset; recovered when
// the server answers with the same pid) and its reconnection backoff. A
// delivered "m" costs a few string searches instead of socket.io-client's
// decoding and event machinery, so at 10,000 clients the clients leave the
// cores to the servers. Same arguments and stdin commands as
// tests/peers/node_streams_clients.mjs (cut, wait, report).
//
//   node storm_clients.js port=PORT [n=1] [rooms=r1] [ramp=250] [connect_ms=30000]
//        [delay_ms=50] [delay_max_ms=500] [timeout_ms=60000]
"use strict";
const net = require("net");
const crypto = require("crypto");
const readline = require("readline");

const args = {};
for (const a of process.argv.slice(2)) {
  const eq = a.indexOf("=");
  args[eq < 0 ? a : a.slice(0, eq)] = eq < 0 ? "true" : a.slice(eq + 1);
}
const n = Number(args.n ?? 1);
const rooms = args.rooms ? args.rooms.split(",") : [];
const ramp = Math.max(1, Number(args.ramp ?? n));
const connectMs = Number(args.connect_ms ?? 30000);
const delayMs = Number(args.delay_ms ?? 50);
const delayMaxMs = Number(args.delay_max_ms ?? 500);
const CONNECT_TIMEOUT_MS = 20000; // socket.io-client's `timeout`
setTimeout(() => { out("timeout", {}); process.exit(2); }, Number(args.timeout_ms ?? 60000)).unref();

function out(event, fields) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

let port = Number(args.port);
const PONG = Buffer.from([0x81, 0x81, 0, 0, 0, 0, 0x33]); // "3", masked with a zero key

/** A client frame: FIN + text, masked with a zero key (the bytes stay as they are). */
function textFrame(s) {
  const body = Buffer.from(s);
  let head;
  if (body.length < 126) head = Buffer.from([0x81, 0x80 | body.length, 0, 0, 0, 0]);
  else head = Buffer.from([0x81, 0x80 | 126, body.length >> 8, body.length & 255, 0, 0, 0, 0]);
  return Buffer.concat([head, body]);
}

class Client {
  constructor(i) {
    this.i = i;
    this.got = [];
    this.inOrder = true;
    this.connects = 0;
    this.recovered = [];
    this.pid = null;
    this.offset = null;
    this.cutAt = null;
    this.backAt = null;
    this.attempts = 0;
    this.errors = {};
    this.connected = false;
    this.sock = null;
    this.retries = 0;
    this.timer = null;
  }

  error(key) {
    this.errors[key] = (this.errors[key] ?? 0) + 1;
  }

  open() {
    const sock = net.connect(port, "127.0.0.1");
    this.sock = sock;
    this.connected = false;
    let buf = null;
    let upgraded = false;
    sock.setNoDelay(true);
    this.timer = setTimeout(() => { this.error("timeout"); sock.destroy(); }, CONNECT_TIMEOUT_MS);
    sock.on("connect", () => {
      const key = crypto.randomBytes(16).toString("base64");
      sock.write(`GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    sock.on("data", (chunk) => {
      buf = buf && buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        if (!buf.slice(0, 12).toString().includes("101")) { this.error("websocket error"); sock.destroy(); return; }
        upgraded = true;
        buf = buf.subarray(end + 4);
      }
      let pos = 0;
      while (buf.length - pos >= 2) {
        let len = buf[pos + 1] & 127;
        let head = 2;
        if (len === 126) { if (buf.length - pos < 4) break; len = buf.readUInt16BE(pos + 2); head = 4; }
        else if (len === 127) { if (buf.length - pos < 10) break; len = Number(buf.readBigUInt64BE(pos + 2)); head = 10; }
        if (buf.length - pos < head + len) break;
        const opcode = buf[pos] & 15;
        if (opcode === 1) this.onText(buf.toString("latin1", pos + head, pos + head + len));
        else if (opcode === 8) { sock.destroy(); return; }
        pos += head + len;
      }
      buf = pos === buf.length ? null : buf.subarray(pos);
    });
    sock.on("error", () => this.error("websocket error"));
    sock.on("close", () => {
      clearTimeout(this.timer);
      if (this.sock !== sock) return;
      this.connected = false;
      this.sock = null;
      this.reconnect();
    });
  }

  onText(t) {
    const c = t.charCodeAt(0);
    if (c === 50 /* "2" ping */) { this.sock.write(PONG); return; }
    if (c === 48 /* "0" open */) {
      const auth = { rooms, data: { i: this.i } };
      this.sock.write(textFrame("40" + JSON.stringify(this.pid ? { pid: this.pid, offset: this.offset, ...auth } : auth)));
      return;
    }
    if (c !== 52 /* "4" message */) return;
    const kind = t.charCodeAt(1);
    if (kind === 50 /* "42" event */) {
      // 42["m",K,"OFFSET"]
      if (!t.startsWith('42["m",')) return;
      const comma = t.indexOf(",", 7);
      const k = Number(t.slice(7, comma < 0 ? t.length - 1 : comma));
      if (this.got.length && k !== this.got[this.got.length - 1] + 1) this.inOrder = false;
      this.got.push(k);
      if (comma > 0) this.offset = t.slice(comma + 2, t.length - 2);
    } else if (kind === 48 /* "40" connect */) {
      const data = JSON.parse(t.slice(2));
      clearTimeout(this.timer);
      this.recovered.push(Boolean(this.pid && data.pid === this.pid));
      this.pid = data.pid ?? null;
      this.connected = true;
      this.connects++;
      this.retries = 0;
      if (this.cutAt !== null) this.backAt = Date.now();
    } else if (kind === 52 /* "44" connect_error */) {
      this.error("connect_error");
      this.sock.destroy();
    }
  }

  reconnect() {
    // socket.io-client's backoff: delay * 2^attempt, randomized by +-50%, capped
    let ms = delayMs * 2 ** this.retries++;
    const deviation = Math.floor(Math.random() * 0.5 * ms);
    ms = (Math.floor(Math.random() * 10) & 1) === 0 ? ms - deviation : ms + deviation;
    ms = Math.min(ms, delayMaxMs) | 0;
    setTimeout(() => { this.attempts++; this.open(); }, ms);
  }
}

const clients = [];

async function waitConnects(count, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (clients.length === n && clients.every((c) => c.connects >= count && c.connected)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

function report(backsWanted) {
  let recovered = 0, inOrder = 0, lastBack = 0, firstCut = Infinity;
  const errors = {};
  for (const c of clients) {
    if (c.recovered[c.recovered.length - 1] === true) recovered++;
    if (c.inOrder) inOrder++;
    if (c.backAt) lastBack = Math.max(lastBack, c.backAt);
    if (c.cutAt !== null) firstCut = Math.min(firstCut, c.cutAt);
    for (const [k, v] of Object.entries(c.errors)) errors[k] = (errors[k] ?? 0) + v;
  }
  const backs = clients.filter((c) => c.backAt && c.cutAt !== null).map((c) => c.backAt - c.cutAt).sort((a, b) => a - b);
  const pct = (q) => (backs.length ? backs[Math.min(backs.length - 1, Math.floor(q * backs.length))] : null);
  const cpu = process.cpuUsage();
  const res = {
    n: clients.length, back_p50_ms: pct(0.5), back_p90_ms: pct(0.9),
    attempts: clients.reduce((a, c) => a + c.attempts, 0), errors, recovered, in_order: inOrder,
    total_got: clients.reduce((a, c) => a + c.got.length, 0),
    back_ms: lastBack && firstCut !== Infinity ? lastBack - firstCut : null,
    cut_at: firstCut === Infinity ? null : firstCut, last_back_at: lastBack || null,
    cpu_ms: Math.round((cpu.user + cpu.system) / 1000),
  };
  if (backsWanted) res.backs = backs;
  return res;
}

async function run(c) {
  switch (c.cmd) {
    case "cut": {
      const now = Date.now();
      port = Number(c.port);
      for (const cl of clients) {
        cl.cutAt = now;
        cl.retries = 0;
        // the TCP connection goes away under the client: "transport close" on both sides
        if (cl.sock) cl.sock.destroy();
      }
      return {};
    }
    case "wait":
      return { ok: await waitConnects(c.connects ?? 1, c.ms ?? 10000) };
    case "report":
      return report(!!c.backs);
    case "quit":
      for (const cl of clients) { cl.reconnect = () => {}; cl.sock?.destroy(); }
      setTimeout(() => process.exit(0), 10);
      return {};
    default:
      throw new Error(`unknown command ${c.cmd}`);
  }
}

readline.createInterface({ input: process.stdin }).on("line", async (line) => {
  if (!line.trim()) return;
  const c = JSON.parse(line);
  try {
    out("result", { id: c.id, ...(await run(c)) });
  } catch (e) {
    out("result", { id: c.id, error: String(e?.message ?? e) });
  }
});
process.stdin.on("end", () => process.exit(0));

(async () => {
  const end = Date.now() + connectMs;
  for (let i = 0; i < n; i++) {
    if (i > 0 && i % ramp === 0) {
      while (Date.now() < end && !clients.every((c) => c.connects >= 1)) await new Promise((r) => setTimeout(r, 10));
    }
    const cl = new Client(i);
    clients.push(cl);
    cl.open();
  }
  if (await waitConnects(1, Math.max(1000, end - Date.now()))) out("connected", { n });
  else out("error", { message: "not every client connected" });
})();
