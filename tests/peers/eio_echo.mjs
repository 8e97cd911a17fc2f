// engine.io-client v6 against a fastsio Engine that echoes every message.
//
//   node eio_echo.mjs port=PORT mode=websocket|polling|upgrade count=N [push=M]
//
// Sends N text and N binary messages, interleaved and numbered, and expects
// each echoed back in order, unchanged. In upgrade mode the sending starts on
// the polling transport and goes on after the upgrade (it pauses at 80% until
// the upgrade is done, so both sides of it carry messages). push=M says the
// server sends M messages of its own ("srv:<i>") from the start of the
// connection; they must arrive complete and in order too.
// Prints "open", "upgrade", then one "result" line; exits 0 when everything
// came back, 1 on a mismatch or close, 2 on the deadline.
import { Socket } from "engine.io-client";
import { deadline, exit, out, parseArgs, transportsFor } from "./lib.mjs";

const args = parseArgs();
const port = Number(args.port);
const mode = args.mode ?? "websocket";
const count = Number(args.count ?? 100);
const push = Number(args.push ?? 0);
const timeoutMs = Number(args.timeout_ms ?? 20000);

// Message i: text when i is even, binary when odd. Contents vary in length and
// include multi-byte UTF-8, a leading digit and "b" (which mean something in
// the polling payload format), and an empty string.
function message(i) {
  if (i % 2 === 0) {
    const n = i / 2;
    if (n === 0) return "";
    const extras = ["", "é✓😀", "4not-a-packet", "b64?", " spaces ", "x".repeat(300)];
    return `t${n}:${extras[n % extras.length]}`;
  }
  const n = (i - 1) / 2;
  const len = 4 + (n % 7 === 0 ? 3000 : n % 41);
  const buf = Buffer.alloc(len);
  buf.writeUInt32BE(n, 0);
  for (let k = 4; k < len; k++) buf[k] = (n + k) % 256;
  return buf;
}

const total = 2 * count;
let next = 0;
const sent = [];
const echoes = [];
const pushes = [];
let upgraded = false;
let sentBeforeUpgrade = null;
let echoedBeforeUpgrade = null;
let pushesBeforeUpgrade = null;
let finished = false;

const state = () => ({
  sent: sent.length, echoed: echoes.length, pushed: pushes.length, upgraded,
  transport: socket?.transport?.name ?? null,
});
deadline(timeoutMs, state);

const socket = new Socket(`ws://127.0.0.1:${port}`, {
  path: "/engine.io/",
  ...transportsFor(mode),
});

function same(a, b) {
  if (typeof a === "string" || typeof b === "string") return a === b;
  return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
}

function describe(v) {
  return typeof v === "string" ? { text: v.slice(0, 40) } : { binary_len: v?.length, head: v?.subarray?.(0, 8).toString("hex") };
}

function finish(reason) {
  if (finished) return;
  finished = true;
  let firstMismatch = null;
  for (let k = 0; k < Math.max(sent.length, echoes.length); k++) {
    if (k >= echoes.length || k >= sent.length || !same(sent[k], echoes[k])) {
      firstMismatch = { index: k, sent: sent[k] === undefined ? null : describe(sent[k]), got: echoes[k] === undefined ? null : describe(echoes[k]) };
      break;
    }
  }
  const pushOrder = pushes.every((p, k) => p === `srv:${k}`);
  const ok = reason === "complete" && firstMismatch === null && pushOrder;
  out("result", {
    ok, reason, mode,
    sent: sent.length, echoed: echoes.length,
    text_echoed: echoes.filter((e) => typeof e === "string").length,
    binary_echoed: echoes.filter((e) => Buffer.isBuffer(e)).length,
    in_order: firstMismatch === null, first_mismatch: firstMismatch,
    pushed: pushes.length, push_in_order: pushOrder,
    transport: socket.transport?.name ?? null, upgraded,
    sent_before_upgrade: sentBeforeUpgrade, echoed_before_upgrade: echoedBeforeUpgrade,
    pushed_before_upgrade: pushesBeforeUpgrade,
  });
  socket.close();
  exit(ok ? 0 : 1);
}

function checkDone() {
  if (next === total && sent.length === total && echoes.length === total && pushes.length === push) {
    if (mode === "upgrade" && !upgraded) return; // wait for the upgrade too
    finish("complete");
  }
}

// Sends a few messages per tick so the stream spans many loop iterations.
function pump() {
  if (finished) return;
  const pauseAt = Math.floor(total * 0.8);
  for (let k = 0; k < 5 && next < total; k++) {
    if (mode === "upgrade" && !upgraded && next >= pauseAt) break;
    const m = message(next++);
    sent.push(m);
    socket.send(m);
  }
  if (next < total) setTimeout(pump, mode === "upgrade" ? 2 : 0);
}

socket.on("open", () => {
  out("open", { transport: socket.transport.name, id: socket.id });
  pump();
});

socket.on("upgrade", (transport) => {
  upgraded = true;
  sentBeforeUpgrade = sent.length;
  echoedBeforeUpgrade = echoes.length;
  pushesBeforeUpgrade = pushes.length;
  out("upgrade", { transport: transport.name, sent: sent.length, echoed: echoes.length, pushed: pushes.length });
  checkDone();
});

socket.on("message", (data) => {
  // engine.io-parser gives an empty text message as undefined.
  if (data === undefined) data = "";
  if (typeof data === "string" && data.startsWith("srv:")) pushes.push(data);
  else echoes.push(data);
  checkDone();
});

socket.on("error", (err) => out("error", { message: String(err?.message ?? err) }));
socket.on("close", (reason, description) => {
  out("close", { reason, description: String(description?.message ?? description ?? "") });
  finish(`closed: ${reason}`);
});
