"""A stateful fuzz test against a live fastsio server (issue 11, section 7).

The server runs in a thread on its own uvloop loop. Hypothesis drives hostile
clients on real TCP connections (random and mutated HTTP requests, WebSocket
frames split at random byte boundaries, Engine.IO and Socket.IO packets, both
transports), interleaved with a well-behaved Socket.IO client that must get
its answer every time. After each example every hostile connection is closed
and the server must come back to where it started: no session, connection,
Socket.IO socket, task or file descriptor left behind.

Bounded in CI (``max_examples`` fixed, short timeouts on the server);
``FASTSIO_FUZZ_LONG=1`` runs many more examples for a manual session (see
tests/fuzz/README.md).
"""
from __future__ import annotations

import asyncio
import os
import random
import socket
import threading
import time
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from fastsio._impl import ws_frames

LONG = os.environ.get("FASTSIO_FUZZ_LONG", "") not in ("", "0")
HOST = "127.0.0.1"
TIMEOUT = 0.3  # every server-side timeout

pytestmark = pytest.mark.timeout(600 if LONG else 120)


class LiveServer:
    """A fastsio.Server with an echo handler, serving from a thread on its own uvloop loop."""

    def __init__(self) -> None:
        import uvloop

        import fastsio
        from fastsio.engineio import socket as eio_socket

        # a session closed while no GET is pending waits this long for one (Node: 30 s);
        # put back by stop(), the rest of the suite runs with the real value
        self._close_timeout = eio_socket.CLOSE_TIMEOUT
        eio_socket.CLOSE_TIMEOUT = TIMEOUT

        self.loop = uvloop.new_event_loop()
        self.io = fastsio.Server(
            ping_interval=TIMEOUT, ping_timeout=TIMEOUT, upgrade_timeout=TIMEOUT, header_timeout=TIMEOUT,
            keep_alive_timeout=TIMEOUT, body_timeout=TIMEOUT, drain_timeout=TIMEOUT, connect_timeout=1,
            max_http_buffer_size=64 * 1024, max_buffered_bytes=256 * 1024, drop_volatile_above=64 * 1024,
            allow_eio3=True,
        )
        self.errors: list[str] = []

        @self.io.on("connection")
        def on_connection(sock: Any) -> None:
            sock.join("all")

            @sock.on("echo")
            def echo(*args: Any) -> Any:
                return args[0] if args else None

            @sock.on("shout")
            def shout(*args: Any) -> None:
                self.io.to("all").emit("heard", *args)
                self.io.to("all").volatile.emit("v", *args)

        def exc_handler(loop: Any, context: dict[str, Any]) -> None:
            self.errors.append(str(context.get("message")) + " " + repr(context.get("exception")))

        self.loop.set_exception_handler(exc_handler)
        s = socket.socket()
        s.bind((HOST, 0))
        self.port = s.getsockname()[1]
        s.close()
        started = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.io.listen(self.port, host=HOST))
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, name="fuzz-server", daemon=True)
        self.thread.start()
        assert started.wait(10), "the server did not start"

    def call(self, fn: Any, timeout: float = 5.0) -> Any:
        """Run ``fn()`` on the server's loop and return its result."""
        async def run() -> Any:
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def tables(self) -> dict[str, int]:
        def count() -> dict[str, int]:
            engine = self.io.engine
            http = engine.http_server()
            return {
                "sessions": len(engine.clients),
                "connections": len(http.connections),
                "sockets": len(self.io.sockets.sockets),
                "room": len(self.io.sockets.adapter.rooms.get("all", ())),
                "tasks": len([t for t in asyncio.all_tasks(self.loop) if not t.done()]),
            }
        return self.call(count)  # type: ignore[no-any-return]

    def stop(self) -> None:
        from fastsio.engineio import socket as eio_socket

        fut = asyncio.run_coroutine_threadsafe(self.io.close(), self.loop)
        try:
            fut.result(10)
        finally:
            eio_socket.CLOSE_TIMEOUT = self._close_timeout
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def fd_names() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return sorted(out)


_SERVER: Optional[LiveServer] = None


def server() -> LiveServer:
    global _SERVER
    if _SERVER is None:
        _SERVER = LiveServer()
    return _SERVER


# -- inputs -------------------------------------------------------------------------------------

PATHS = ["/socket.io/", "/socket.io/socket.io.js", "/nothing", "/", "/socket.io"]
QUERIES = ["EIO=4&transport=polling", "EIO=4&transport=websocket", "EIO=3&transport=polling",
           "EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA", "EIO=9&transport=polling", "transport=__proto__",
           "EIO=4&transport=polling&b64=1", ""]
METHODS = ["GET", "POST", "OPTIONS", "PUT", "HEAD", "BREW"]
HEADERS = [
    "Host: 127.0.0.1", "Connection: keep-alive", "Connection: close", "Connection: Upgrade",
    "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Extensions: permessage-deflate", "Content-Length: 5", "Content-Length: 100000000",
    "Transfer-Encoding: chunked", "Content-Type: text/plain", "Content-Type: application/octet-stream",
    "Origin: http://x", "Accept-Encoding: gzip", "X-Junk: \x01\x7f", "Content-Length: -1",
]
EIO_PAYLOADS = ["4hello", "2", "3", "1", "6", "5", "2probe", "40", "41", '42["echo","x"]', '421["echo",1]',
                '451-["echo",{"_placeholder":true,"num":0}]', "4", "0", "9", "", "4\x1e4", "b4AAAA", "40/nope,",
                '42["shout","all"]', "BIG"]  # BIG: a message over max_http_buffer_size
SIO_PACKETS = ["0", "0{}", "0/x,", "1", '2["echo","a"]', '21["echo","a"]', '2["shout",1]', "3", "31[1]",
               '51-["echo",{"_placeholder":true,"num":0}]', "4", "6", "2[", '2{"a":1}', "2" + "[" * 600, ""]


def mutate(data: bytes, rnd: random.Random, n: int) -> bytes:
    """``n`` random byte flips, insertions, deletions or truncations."""
    b = bytearray(data)
    for _ in range(n):
        op = rnd.randrange(4)
        pos = rnd.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] = rnd.randrange(256)
        elif op == 1:
            b[pos:pos] = bytes([rnd.choice(b"\r\n:; \x00?&=%/" + bytes([rnd.randrange(256)]))])
        elif op == 2 and b:
            del b[pos:pos + rnd.randrange(1, 8)]
        elif op == 3:
            del b[pos:]
    return bytes(b)


def split(data: bytes, rnd: random.Random) -> list[bytes]:
    """``data`` cut at random byte boundaries."""
    if len(data) < 2:
        return [data]
    cuts = sorted(rnd.sample(range(1, len(data)), min(len(data) - 1, rnd.randrange(0, 5))))
    out, prev = [], 0
    for c in cuts + [len(data)]:
        out.append(data[prev:c])
        prev = c
    return out


class Raw:
    """One hostile client connection (blocking socket with short timeouts)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=2)
        self.sock.settimeout(0.05)

    def send(self, chunks: list[bytes]) -> None:
        for c in chunks:
            try:
                self.sock.sendall(c)
            except OSError:
                return

    def read_some(self) -> bytes:
        try:
            return self.sock.recv(1 << 20)
        except (socket.timeout, OSError):
            return b""

    def close(self, reset: bool = False) -> None:
        if reset:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
        self.sock.close()


def upgrade(target: str) -> bytes:
    return (f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def frame(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
    """A masked client frame, built by hand so that invalid ones (any opcode, flags, sizes) can be sent."""
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (opcode & 0x0F)
    n = len(payload)
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0xFE]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, 0xFF]) + n.to_bytes(8, "big")
    mask = b"\x11\x22\x33\x44"
    if not n:
        return head + mask
    key = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return head + mask + masked


def well_behaved_round_trip(port: int, text: str, timeout: float = 10.0) -> None:
    """A Socket.IO client over WebSocket: connect, emit "echo" with an ack, get the answer."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s.sendall(upgrade("/socket.io/?EIO=4&transport=websocket"))
        parser = ws_frames.FrameParser(1 << 24, client_side=True, allow_rsv1=True)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            assert chunk, "closed during the handshake"
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        frames = list(parser.feed(rest))
        deadline = time.monotonic() + timeout
        stage = 0

        def texts() -> Any:
            nonlocal frames
            while True:
                while frames:
                    op, payload, _ = frames.pop(0)
                    if op == 1:
                        yield payload
                    elif op == 8:
                        raise AssertionError(f"closed: {ws_frames.parse_close(payload)}")
                assert time.monotonic() < deadline, f"no answer at stage {stage}"
                data = s.recv(65536)
                assert data, f"connection closed at stage {stage}"
                frames.extend(parser.feed(data))

        for t in texts():
            if t == "2":
                s.sendall(frame(1, b"3"))
            elif stage == 0 and t.startswith("0"):
                s.sendall(frame(1, b"40"))
                stage = 1
            elif stage == 1 and t.startswith("40"):
                s.sendall(frame(1, ('421["echo","%s"]' % text).encode()))
                stage = 2
            elif stage == 2 and t.startswith("431"):
                assert t == '431["%s"]' % text, t
                return
    finally:
        s.close()


class LiveServerFuzz(RuleBasedStateMachine):
    """Hostile connections come and go; a well-behaved client is answered throughout."""

    conns = Bundle("conns")

    def __init__(self) -> None:
        super().__init__()
        self.srv = server()
        self.open: list[Raw] = []
        self.checks = 0

    def _conn(self) -> Raw:
        c = Raw(self.srv.port)
        self.open.append(c)
        return c

    @rule(target=conns)
    def connect(self) -> Raw:
        return self._conn()

    @rule(conn=conns, method=st.sampled_from(METHODS), path=st.sampled_from(PATHS),
          query=st.sampled_from(QUERIES), headers=st.lists(st.sampled_from(HEADERS), max_size=6),
          body=st.sampled_from([b"", b"4hello", b"1:4", b"5:4abcd", b"0\r\n\r\n", b"x" * 3000]),
          mutations=st.integers(0, 4), seed=st.integers(0, 2 ** 32))
    def http_request(self, conn: Raw, method: str, path: str, query: str, headers: list[str], body: bytes,
                     mutations: int, seed: int) -> None:
        rnd = random.Random(seed)
        target = path + ("?" + query if query else "")
        raw = (f"{method} {target} HTTP/1.1\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode(
            "latin-1") + body
        raw = mutate(raw, rnd, mutations)
        conn.send(split(raw, rnd))
        conn.read_some()

    @rule(conn=conns, data=st.binary(max_size=300), seed=st.integers(0, 2 ** 32))
    def garbage(self, conn: Raw, data: bytes, seed: int) -> None:
        conn.send(split(data, random.Random(seed)))

    @rule(target=conns, eio=st.sampled_from(["4", "3"]), packets=st.lists(
        st.tuples(st.sampled_from([1, 2, 8, 9, 10, 0, 3, 15]), st.sampled_from(EIO_PAYLOADS + SIO_PACKETS),
                  st.booleans(), st.booleans()), max_size=8),
        seed=st.integers(0, 2 ** 32), read=st.booleans())
    def websocket(self, eio: str, packets: list[tuple[int, str, bool, bool]], seed: int, read: bool) -> Raw:
        rnd = random.Random(seed)
        c = self._conn()
        data = upgrade(f"/socket.io/?EIO={eio}&transport=websocket")
        for opcode, payload, fin, rsv1 in packets:
            payload = "4" + "x" * 70000 if payload == "BIG" else payload
            data += frame(opcode, payload.encode("utf-8", "surrogatepass"), fin, rsv1 and rnd.random() < 0.3)
        if rnd.random() < 0.3:
            data = mutate(data, rnd, rnd.randrange(1, 4))
        c.send(split(data, rnd))
        if read:
            c.read_some()
        return c

    @rule(payloads=st.lists(st.sampled_from(EIO_PAYLOADS), max_size=5), seed=st.integers(0, 2 ** 32),
          upgrade_after=st.booleans())
    def polling_session(self, payloads: list[str], seed: int, upgrade_after: bool) -> None:
        rnd = random.Random(seed)
        c = self._conn()
        c.send([f"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()])
        c.sock.settimeout(2)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = c.sock.recv(65536)
                if not chunk:
                    return
                head += chunk
        except OSError:
            return
        finally:
            c.sock.settimeout(0.05)
        marker = head.find(b'"sid":"')
        if marker < 0:
            return
        sid = head[marker + 7:marker + 27].decode("latin-1")
        body = "\x1e".join("4" + "x" * 70000 if p == "BIG" else p for p in payloads).encode("utf-8", "surrogatepass")
        post = (f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {HOST}\r\n"
                f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        if rnd.random() < 0.3:
            post = mutate(post, rnd, rnd.randrange(1, 4))
        c.send(split(post, rnd))
        c.read_some()
        if upgrade_after:
            w = self._conn()
            w.send(split(upgrade(f"/socket.io/?EIO=4&transport=websocket&sid={sid}") + frame(1, b"2probe")
                         + frame(1, b"5"), rnd))

    @rule(conn=consumes(conns), reset=st.booleans())
    def close(self, conn: Raw, reset: bool) -> None:
        conn.close(reset)
        if conn in self.open:
            self.open.remove(conn)

    @rule()
    def well_behaved(self) -> None:
        self.checks += 1
        well_behaved_round_trip(self.srv.port, f"w{self.checks}")

    @invariant()
    def server_alive(self) -> None:
        assert self.srv.thread.is_alive()
        assert not self.srv.errors, self.srv.errors

    def teardown(self) -> None:
        for c in self.open:
            c.close()
        self.open.clear()
        # the server answers a well-behaved client after all of that...
        well_behaved_round_trip(self.srv.port, "last")
        # ...and comes back to an empty state: sessions end within their timeouts
        deadline = time.monotonic() + 10
        while True:
            t = self.srv.tables()
            if (t["sessions"] == 0 and t["connections"] == 0 and t["sockets"] == 0 and t["room"] == 0
                    and t["tasks"] <= BASELINE["tasks"] and fd_count() <= BASELINE["fds"]):
                break
            assert time.monotonic() < deadline, f"left behind: {t}, fds {fd_names()} vs {BASELINE}"
            time.sleep(0.05)


BASELINE: dict[str, Any] = {}

LiveServerFuzz.TestCase.settings = settings(
    max_examples=400 if LONG else 5,
    stateful_step_count=40 if LONG else 10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=not LONG,
)


def test_live_server_fuzz() -> None:
    srv = server()
    try:
        well_behaved_round_trip(srv.port, "first")
        deadline = time.monotonic() + 10
        while srv.tables()["sessions"] and time.monotonic() < deadline:
            time.sleep(0.05)
        BASELINE["tasks"] = srv.tables()["tasks"]
        BASELINE["fds"] = fd_count()
        BASELINE["names"] = fd_names()  # type: ignore[assignment]
        LiveServerFuzz.TestCase("runTest").runTest()
        assert not srv.errors, srv.errors
    finally:
        global _SERVER
        _SERVER = None
        srv.stop()
