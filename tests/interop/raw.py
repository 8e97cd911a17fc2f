"""A small raw HTTP/1.1 and WebSocket client over asyncio streams, for protocol tests.

It sends exactly the bytes a test gives it and reads back exactly what the
server wrote: a status line, headers and a body, or WebSocket frames. Frames
are built with ``ws_frames.build_frame`` (masked, like a real client) or by
hand for the hostile cases; the server's frames are read with a client-side
``ws_frames.FrameParser``.

On top of that, Engine.IO helpers: a polling handshake, poll and post, a
WebSocket session, and an echo "witness" session used to check that a server
still serves its other clients after a hostile one.
"""
from __future__ import annotations

import asyncio
import base64
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import orjson

from fastsio._impl import eio_codec, ws_frames

__all__ = [
    "HOST",
    "EngineFixture",
    "HttpResponse",
    "build_request",
    "RawConn",
    "RawWebSocket",
    "Witness",
    "close_all",
    "free_port",
    "http_request",
    "polling_handshake",
    "poll",
    "post",
    "ws_key",
    "ws_open",
    "eio_ws_open",
    "upgrade_request",
]

HOST = "127.0.0.1"
PATH = "/engine.io/"
MASK = b"\x37\xfa\x21\x3d"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
    return port


def ws_key() -> str:
    """A fresh, valid Sec-WebSocket-Key."""
    return base64.b64encode(os.urandom(16)).decode()


@dataclass
class HttpResponse:
    """One HTTP response as read off the wire."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes = b""

    def header(self, name: str) -> Optional[str]:
        """The first value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return orjson.loads(self.body)

    def __repr__(self) -> str:
        return f"<HttpResponse {self.status} {self.headers!r} {self.body[:200]!r}>"


class RawConn:
    """One TCP connection to the server: write bytes, read responses or EOF."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()
        self.eof = False

    @classmethod
    async def connect(cls, port: int, host: str = HOST) -> "RawConn":
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
        conn = cls(reader, writer)
        _OPEN.add(conn)
        return conn

    async def send(self, data: bytes) -> None:
        """Write ``data`` as is (one write call)."""
        self.writer.write(data)
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            pass

    async def _fill(self, timeout: float) -> bool:
        """Read more bytes into ``buf``; False at EOF (or reset)."""
        if self.eof:
            return False
        try:
            chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
        except ConnectionError:  # not OSError: asyncio.TimeoutError is one since 3.11
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    async def read_response(self, timeout: float = 5.0) -> HttpResponse:
        """Read one response; fails if the connection ends before it is complete."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not await self._fill(max(0.01, deadline - loop.time())):
                raise EOFError(f"connection closed before a full response head: {bytes(self.buf)!r}")
        end = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:end])
        del self.buf[: end + 4]
        lines = head.decode("latin-1").split("\r\n")
        version, status, *rest = lines[0].split(" ", 2)
        assert version.startswith("HTTP/1."), lines[0]
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        resp = HttpResponse(int(status), rest[0] if rest else "", headers, b"", head)
        if resp.status == 101 or resp.status == 204 or resp.status == 304:
            return resp
        cl = resp.header("content-length")
        if cl is not None:
            n = int(cl)
            while len(self.buf) < n:
                if not await self._fill(max(0.01, deadline - loop.time())):
                    raise EOFError(f"connection closed inside a body: {resp!r} {bytes(self.buf)!r}")
            resp.body = bytes(self.buf[:n])
            del self.buf[:n]
        else:
            while await self._fill(max(0.01, deadline - loop.time())):
                pass
            resp.body = bytes(self.buf)
            self.buf.clear()
        return resp

    async def read_until_eof(self, timeout: float = 5.0) -> bytes:
        """Everything until the peer closes; raises TimeoutError if it does not within ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError(f"connection still open after {timeout}s; got {bytes(self.buf)!r}")
            if not await self._fill(left):
                out = bytes(self.buf)
                self.buf.clear()
                return out

    async def closed_within(self, timeout: float) -> bool:
        """True if the server closes the connection within ``timeout`` seconds."""
        try:
            await self.read_until_eof(timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def request(self, method: str, target: str, headers: Optional[dict[str, str]] = None,
                      body: bytes = b"", timeout: float = 5.0) -> HttpResponse:
        """Send a well-formed request on this connection and read its response."""
        await self.send(build_request(method, target, headers, body))
        return await self.read_response(timeout)

    async def close(self) -> None:
        _OPEN.discard(self)
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except (Exception, asyncio.TimeoutError):
            pass


_OPEN: set[RawConn] = set()


async def close_all() -> None:
    """Close every RawConn a test left open (fixtures call this on teardown)."""
    for conn in list(_OPEN):
        await conn.close()


def build_request(method: str, target: str, headers: Optional[dict[str, str]] = None,
                  body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}"]
    hdrs = dict(headers or {})
    if body or method in ("POST", "PUT"):
        hdrs.setdefault("Content-Length", str(len(body)))
    for k, v in hdrs.items():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def http_request(port: int, method: str, target: str, headers: Optional[dict[str, str]] = None,
                       body: bytes = b"", timeout: float = 5.0) -> HttpResponse:
    """One request on a fresh connection, which is then closed."""
    conn = await RawConn.connect(port)
    try:
        return await conn.request(method, target, headers, body, timeout)
    finally:
        await conn.close()


# -- WebSocket ---------------------------------------------------------------------------------------

class RawWebSocket:
    """The client end of an upgraded connection."""

    def __init__(self, conn: RawConn, response: HttpResponse) -> None:
        self.conn = conn
        self.response = response
        self.parser = ws_frames.FrameParser(1 << 30, max_fragments=1 << 30, client_side=True,
                                            allow_rsv1=True)
        self.frames: list[tuple[int, Union[str, bytes], bool]] = []
        if conn.buf:
            self.frames.extend(self.parser.feed(bytes(conn.buf)))
            conn.buf.clear()

    async def send_raw(self, data: bytes) -> None:
        await self.conn.send(data)

    async def send_frame(self, opcode: int, payload: Union[str, bytes] = b"", *, fin: bool = True,
                         rsv1: bool = False, mask: Optional[bytes] = MASK) -> None:
        await self.conn.send(ws_frames.build_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=mask))

    async def send_text(self, text: str) -> None:
        await self.send_frame(1, text)

    async def send_binary(self, data: bytes) -> None:
        await self.send_frame(2, data)

    async def recv_frame(self, timeout: float = 5.0) -> tuple[int, Union[str, bytes], bool]:
        """The next message or control frame: ``(opcode, payload, compressed)``.

        Raises EOFError when the connection ends first.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.frames:
            if not await self.conn._fill(max(0.01, deadline - loop.time())):
                raise EOFError("connection closed without a frame")
            data = bytes(self.conn.buf)
            self.conn.buf.clear()
            self.frames.extend(self.parser.feed(data))
        return self.frames.pop(0)

    async def close_code(self, timeout: float = 5.0) -> int:
        """Read frames until the server's close frame; return its code (1005 if empty).

        Raises EOFError if the connection ends without a close frame.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            opcode, payload, _ = await self.recv_frame(max(0.01, deadline - loop.time()))
            if opcode == 8:
                code, _ = ws_frames.parse_close(payload)
                return int(code)

    async def recv_eio(self, timeout: float = 5.0, answer_pings: bool = True) -> tuple[int, Union[str, bytes]]:
        """The next Engine.IO packet; answers server pings ("2" -> "3") on the way when asked."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            opcode, payload, _ = await self.recv_frame(max(0.01, deadline - loop.time()))
            if opcode in (1, 2):
                ptype, data = eio_codec.decode_ws(payload)
                if answer_pings and ptype == 2 and data == "":
                    await self.send_text("3")
                    continue
                return int(ptype), data
            if opcode == 8:
                raise EOFError(f"close frame {ws_frames.parse_close(payload)}")

    async def closed_within(self, timeout: float) -> bool:
        return await self.conn.closed_within(timeout)

    async def close(self) -> None:
        await self.conn.close()


def upgrade_request(target: str, key: Optional[str] = None, extra: Optional[dict[str, str]] = None) -> bytes:
    """A valid WebSocket upgrade request for ``target``."""
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key or ws_key(),
        "Sec-WebSocket-Version": "13",
    }
    if extra:
        headers.update(extra)
    return build_request("GET", target, headers)


async def ws_open(port: int, target: str, extra: Optional[dict[str, str]] = None) -> RawWebSocket:
    """Upgrade a fresh connection to WebSocket; asserts the 101."""
    conn = await RawConn.connect(port)
    await conn.send(upgrade_request(target, extra=extra))
    resp = await conn.read_response()
    assert resp.status == 101, resp
    return RawWebSocket(conn, resp)


async def eio_ws_open(port: int, query: str = "EIO=4&transport=websocket",
                      path: str = PATH) -> tuple[RawWebSocket, dict[str, Any]]:
    """A WebSocket-only Engine.IO session: (socket, handshake data of the open packet)."""
    ws = await ws_open(port, f"{path}?{query}")
    ptype, data = await ws.recv_eio()
    assert ptype == 0, (ptype, data)
    assert isinstance(data, str)
    return ws, orjson.loads(data)


# -- Engine.IO polling ---------------------------------------------------------------------------------

async def polling_handshake(port: int, query: str = "EIO=4&transport=polling",
                            path: str = PATH, headers: Optional[dict[str, str]] = None
                            ) -> tuple[str, dict[str, Any], HttpResponse]:
    """Open a polling session: (sid, handshake data, the response)."""
    resp = await http_request(port, "GET", f"{path}?{query}", headers)
    assert resp.status == 200, resp
    packets = eio_codec.decode_payload(resp.body)
    assert packets[0][0] == 0, packets
    data = orjson.loads(packets[0][1])
    return data["sid"], data, resp


async def poll(port: int, sid: str, timeout: float = 5.0, eio: int = 4,
               headers: Optional[dict[str, str]] = None) -> list[tuple[int, Union[str, bytes]]]:
    """One long-polling GET; its packets."""
    resp = await http_request(port, "GET", f"{PATH}?EIO={eio}&transport=polling&sid={sid}", headers,
                              timeout=timeout)
    assert resp.status == 200, resp
    return list(eio_codec.decode_payload(resp.body))


async def post(port: int, sid: str, body: Union[str, bytes], eio: int = 4,
               headers: Optional[dict[str, str]] = None) -> HttpResponse:
    """One POST of ``body`` to the session."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    hdrs = {"Content-Type": "text/plain;charset=UTF-8"}
    hdrs.update(headers or {})
    return await http_request(port, "POST", f"{PATH}?EIO={eio}&transport=polling&sid={sid}", hdrs, raw)


# -- a live engine with a witness session -------------------------------------------------------------------

class Witness:
    """An open WebSocket Engine.IO session on the server under test.

    ``await witness.check()`` sends a message and waits for its echo: the
    server still serves its other clients.
    """

    def __init__(self, ws: RawWebSocket, sid: str) -> None:
        self.ws = ws
        self.sid = sid
        self.n = 0

    async def check(self, timeout: float = 5.0) -> None:
        self.n += 1
        text = f"witness-{self.n}"
        await self.ws.send_text("4" + text)
        while True:
            ptype, data = await self.ws.recv_eio(timeout)
            if ptype == 4 and data == text:
                return


@dataclass
class EngineFixture:
    """An echoing ``fastsio.engineio.Engine`` on 127.0.0.1 with bookkeeping for asserts."""

    engine: Any
    port: int
    sockets: list[Any] = field(default_factory=list)
    closes: list[tuple[str, str]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    received: list[Union[str, bytes]] = field(default_factory=list)

    @classmethod
    async def start(cls, **options: Any) -> "EngineFixture":
        from fastsio.engineio import Engine

        options.setdefault("path", PATH)
        engine = Engine(**options)
        port = free_port()
        fx = cls(engine, port)
        engine.on("connection", fx._on_connection)
        engine.on("connection_error", fx.errors.append)
        await engine.listen(port, host=HOST)
        return fx

    def _on_connection(self, sock: Any) -> None:
        self.sockets.append(sock)

        def on_message(data: Union[str, bytes]) -> None:
            self.received.append(data)
            sock.send(data)

        def on_close(reason: str, description: Any = None) -> None:
            self.closes.append((sock.id, reason))

        sock.on("message", on_message)
        sock.on("close", on_close)

    def close_reason(self, sid: str) -> Optional[str]:
        for s, reason in self.closes:
            if s == sid:
                return reason
        return None

    async def witness(self) -> Witness:
        ws, hs = await eio_ws_open(self.port)
        w = Witness(ws, hs["sid"])
        await w.check()
        return w

    async def stop(self) -> None:
        await close_all()
        await asyncio.wait_for(self.engine.close(), 10)


async def wait_for(predicate: Any, timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate()`` on the loop until true; AssertionError after ``timeout`` (an upper bound)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
