// socket.io-client v4 through every event of the tests/compat_apps apps.
//
//   node compat_apps_client.mjs app=chat|fiddle|latency port=PORT [mode=websocket|polling]
//
// Prints one JSON line per app ("chat" {ok}, "hello" {args}, "latency" {pongs}),
// then "done"; a failure prints "fail" and exits 1.
import { io } from "socket.io-client";
import { deadline, exit, out, parseArgs, sleep, transportsFor } from "./lib.mjs";

const args = parseArgs();
const url = `http://127.0.0.1:${Number(args.port)}`;
const mode = args.mode ?? "websocket";
deadline(Number(args.timeout_ms ?? 25000));
const opts = (extra = {}) => ({ ...transportsFor(mode), forceNew: true, reconnection: false, ...extra });

function inbox(socket, ev) {
  const items = [];
  const waiters = [];
  socket.on(ev, (...a) => {
    const v = a.length === 1 ? a[0] : a;
    if (waiters.length) waiters.shift()(v);
    else items.push(v);
  });
  return {
    next(ms = 5000) {
      if (items.length) return Promise.resolve(items.shift());
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no ${ev} within ${ms} ms`)), ms);
        waiters.push((v) => { clearTimeout(t); resolve(v); });
      });
    },
    drain() { items.length = 0; },
    get size() { return items.length; },
  };
}

function connected(socket) {
  return new Promise((resolve, reject) => { socket.on("connect", resolve); socket.on("connect_error", reject); });
}

function expect(value, want, what) {
  if (JSON.stringify(value) !== JSON.stringify(want)) throw new Error(`${what}: got ${JSON.stringify(value)}, want ${JSON.stringify(want)}`);
}

async function chat() {
  const a = io(url, opts());
  const b = io(url, opts());
  const ia = inbox(a, "my_response");
  const ib = inbox(b, "my_response");
  await Promise.all([connected(a), connected(b)]);
  expect(await ia.next(), { data: "Connected", count: 0 }, "connect a");
  expect(await ib.next(), { data: "Connected", count: 0 }, "connect b");
  const tick = await ia.next();
  expect(tick.data, "Server generated event", "background task");
  await sleep(50);
  ia.drain(); ib.drain();
  const quiet = async (box) => { await sleep(300); return box.size; };
  // the ticker keeps running in this test: ignore its events
  const nextReal = async (box) => { for (;;) { const v = await box.next(); if (v.data !== "Server generated event") return v; } };
  a.emit("my_event", { data: "only me" });
  expect(await nextReal(ia), { data: "only me" }, "my_event");
  a.emit("my_broadcast_event", { data: "everybody" });
  expect(await nextReal(ia), { data: "everybody" }, "broadcast a");
  expect(await nextReal(ib), { data: "everybody" }, "broadcast b");
  a.emit("join", { room: "r1" });
  expect(await nextReal(ia), { data: "Entered room: r1" }, "join");
  b.emit("my_room_event", { room: "r1", data: "to r1" });
  expect(await nextReal(ia), { data: "to r1" }, "room event");
  a.emit("leave", { room: "r1" });
  expect(await nextReal(ia), { data: "Left room: r1" }, "leave");
  b.emit("join", { room: "r2" });
  expect(await nextReal(ib), { data: "Entered room: r2" }, "join r2");
  a.emit("close room", { room: "r2" });
  expect(await nextReal(ib), { data: "Room r2 is closing." }, "close room");
  const gone = new Promise((resolve) => b.on("disconnect", resolve));
  b.emit("disconnect request");
  const reason = await gone;
  expect(reason, "io server disconnect", "server-side disconnect");
  await quiet(ia);
  a.close();
  out("chat", { ok: true });
}

async function fiddle() {
  const s = io(url, opts({ auth: { token: "js" } }));
  const hello = new Promise((resolve) => s.on("hello", (...a) => resolve(a)));
  await connected(s);
  out("hello", { args: await hello });
  s.close();
}

async function latency() {
  const s = io(url, opts());
  const pongs = inbox(s, "pong_from_server");
  await connected(s);
  let n = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    s.emit("ping_from_client");
    await pongs.next();
    n++;
    if (Date.now() - t0 > 5000) throw new Error("slow pong");
  }
  s.close();
  out("latency", { pongs: n });
}

try {
  await ({ chat, fiddle, latency })[args.app]();
  await sleep(50);
  out("done");
  exit(0);
} catch (err) {
  out("fail", { message: String(err && err.stack || err) });
  exit(1);
}
