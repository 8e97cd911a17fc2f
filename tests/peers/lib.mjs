// Helpers shared by the node drivers: arguments, JSON-line output, a hard
// deadline so a driver always exits by itself, and a JSON form for binary.

/** Parses `key=value` arguments into an object (values stay strings). */
export function parseArgs(argv = process.argv.slice(2)) {
  const args = {};
  for (const arg of argv) {
    const eq = arg.indexOf("=");
    if (eq < 0) args[arg] = "true";
    else args[arg.slice(0, eq)] = arg.slice(eq + 1);
  }
  return args;
}

/** Prints one JSON object on its own line (the test reads stdout line by line). */
export function out(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

/** Binary values as {"$bin": hex}, recursively, so they survive JSON. */
export function toJSON(value) {
  if (Buffer.isBuffer(value)) return { $bin: value.toString("hex") };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("hex") };
  if (ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex") };
  }
  if (Array.isArray(value)) return value.map(toJSON);
  if (value && typeof value === "object") {
    const obj = {};
    for (const [k, v] of Object.entries(value)) obj[k] = toJSON(v);
    return obj;
  }
  return value === undefined ? null : value;
}

/** Describes what kind of value arrived ("Buffer", "ArrayBuffer", "string", ...). */
export function kind(value) {
  if (Buffer.isBuffer(value)) return "Buffer";
  if (value instanceof ArrayBuffer) return "ArrayBuffer";
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/** Flushes stdout, then exits with `code`. */
export function exit(code = 0) {
  process.stdout.write("", () => process.exit(code));
}

/** Exits with code 2 after `ms` milliseconds, printing a "timeout" line with `state()`. */
export function deadline(ms, state = () => ({})) {
  const timer = setTimeout(() => {
    out("timeout", { after_ms: ms, ...state() });
    exit(2);
  }, ms);
  timer.unref?.();
  return timer;
}

/** Transport options for a mode name: websocket, polling or upgrade. */
export function transportsFor(mode) {
  switch (mode) {
    case "websocket":
      return { transports: ["websocket"] };
    case "polling":
      return { transports: ["polling"], upgrade: false };
    case "upgrade":
      return { transports: ["polling", "websocket"], upgrade: true };
    default:
      throw new Error(`unknown transport mode ${mode}`);
  }
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the first emission of `event` on `emitter` (rejects after `ms`). */
export function once(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

/** Resolves once `socket` (socket.io-client) is connected; rejects on connect_error or after `ms`. */
export function connected(socket, ms = 10000) {
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connect for ${socket.nsp} within ${ms} ms`)), ms);
    socket.once("connect", () => { clearTimeout(timer); resolve(); });
    socket.once("connect_error", (err) => { clearTimeout(timer); reject(err); });
  });
}

/** Polls `predicate` every few milliseconds; rejects after `ms` naming `what`. */
export async function until(predicate, ms = 10000, what = "condition") {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
