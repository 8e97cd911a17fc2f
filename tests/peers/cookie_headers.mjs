// The Set-Cookie header of a Node socket.io 4.8 handshake for each `cookie`
// option given, to compare fastsio's header with Node's byte for byte.
//
//   node cookie_headers.mjs cases=BASE64(JSON list of cookie options)
//
// An option {"$date": ISO} inside a case becomes a Date (for `expires`).
// Prints {"event": "cookie", "i": I, "header": "..."} per case, then "done".
import { createServer } from "node:http";
import { Server } from "socket.io";
import { deadline, exit, out, parseArgs } from "./lib.mjs";

const args = parseArgs();
deadline(Number(args.timeout_ms ?? 15000));
const cases = JSON.parse(Buffer.from(args.cases, "base64").toString("utf8"), (_, v) =>
  v && typeof v === "object" && "$date" in v ? new Date(v.$date) : v);

for (const [i, cookie] of cases.entries()) {
  const http = createServer();
  const io = new Server(http, { cookie });
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  const res = await fetch(`http://127.0.0.1:${http.address().port}/socket.io/?EIO=4&transport=polling`);
  const body = await res.text();
  const sid = JSON.parse(body.slice(1)).sid;
  // the session id is the one part that differs between servers
  out("cookie", { i, header: res.headers.get("set-cookie")?.replace(sid, "SID") ?? null });
  io.close();
}
out("done");
exit(0);
