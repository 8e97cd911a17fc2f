// notepack.io as the Node redis adapter uses it, for the wire unit tests.
// Reads one JSON array of jobs from stdin; prints one JSON line per job:
//   {"op":"encode","value":V}  -> {"event":"encoded","hex":...}
//   {"op":"decode","hex":H}    -> {"event":"decoded","value":V,"kind":...}
// Values use {"$bin": hex} for Buffers and {"$date": ms} for Dates.
import { createRequire } from "node:module";
import { out, exit, toJSON, deadline } from "./lib.mjs";

const require = createRequire(import.meta.url);
const notepack = require("notepack.io");
deadline(10000);

function fromJSON(v) {
  if (Array.isArray(v)) return v.map(fromJSON);
  if (v && typeof v === "object") {
    if (typeof v.$bin === "string") return Buffer.from(v.$bin, "hex");
    if (typeof v.$date === "number") return new Date(v.$date);
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = fromJSON(x);
    return o;
  }
  return v;
}

// What a client finally sees: Dates as JSON.stringify renders them, binary as {"$bin": hex}.
function view(v) {
  if (v instanceof Date) return v.toJSON();
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) return toJSON(v);
  if (Array.isArray(v)) return v.map(view);
  if (v && typeof v === "object") {
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = view(x);
    return o;
  }
  return v === undefined ? null : v;
}

let input = "";
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  for (const job of JSON.parse(input)) {
    if (job.op === "encode") {
      out("encoded", { hex: notepack.encode(fromJSON(job.value)).toString("hex") });
    } else {
      try {
        const v = notepack.decode(Buffer.from(job.hex, "hex"));
        out("decoded", { value: view(v) });
      } catch (err) {
        out("error", { message: String(err) });
      }
    }
  }
  exit(0);
});
