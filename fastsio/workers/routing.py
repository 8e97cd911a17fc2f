"""Every request reaches the worker that owns its session.

A session id names its owner: the engine's ids are 15 random bytes in
URL-safe base64 (20 characters); with workers, the first byte is the
worker's index XOR a key the primary draws at start, the other 14 stay
random (112 bits, still unguessable). ``owner_of(sid)`` reads it back.
With a custom ``engine.generate_id``, its ids get two characters in front
(``tag_prefix``: the same first two characters a default id of that worker
has, but for 4 random bits), so the user's id follows them unchanged.

All workers accept on one inherited listening socket. A worker that parses
a request naming a session it does not hold, owned by another worker,
moves the TCP connection to the owner: it stops reading, waits until its
own earlier answers on that connection have left, and sends the file
descriptor over a Unix ``SOCK_SEQPACKET`` connection to the owner (``SCM_RIGHTS``) together
with every byte it read from the start of that request on (the request,
and whatever the client pipelined behind it). The owner wraps the
descriptor in a connection of its own and parses those bytes first, so it
serves the request natively: polling, POST and the WebSocket upgrade alike,
in the order the client sent them. A keep-alive connection carrying
requests for several sessions moves again whenever a request names a
session of another worker.

The bytes a connection has read are kept from the last moment it was idle
(every request answered, no partial request): that is where the next
request starts. Requests answered since then are cut off the front by
finding where they end with a scratch parser (only on the rare pipelined
path).
"""
from __future__ import annotations

import array
import asyncio
import base64
import inspect
import logging
import os
import socket
import struct
from collections import deque
from typing import Any, Callable, Optional

import httptools

from ..http import _H_CLOSED, _H_IDLE, _H_WS, HttpConnection, HttpServer, Request

__all__ = ["make_id_generator", "wrap_id_generator", "tag_prefix", "owner_of", "Router", "WorkerConnection"]

logger = logging.getLogger(__name__)


_HEADER = struct.Struct("!4sBI")  # magic, flags, length of the inline bytes
_MAGIC = b"FSH1"
_F_MEMFD = 1  # the bytes are in a second descriptor (a memfd), not inline
_INLINE_MAX = 32 * 1024
_QUEUE_MAX = 4096  # connections waiting for one owner's socket to take them
_MOVE_DEADLINE = 10.0  # seconds to wait for our own answers to leave before moving


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64 = {c: i for i, c in enumerate(_ALPHABET)}


def make_id_generator(index: int, key: int) -> Callable[..., str]:
    """A ``generate_id`` for the engine of worker ``index`` (0-255)."""
    tag = (index ^ key) & 0xFF

    def generate_id(request: Any = None) -> str:
        raw = bytearray(os.urandom(15))
        raw[0] = tag
        return base64.urlsafe_b64encode(bytes(raw)).decode()

    return generate_id


def tag_prefix(index: int, key: int) -> str:
    """The two characters that name worker ``index`` in front of the ids of a custom ``generate_id``.

    They are what a default id of that worker starts with but for the 4
    random bits, so ``owner_of`` reads both forms the same way.
    """
    tag = (index ^ key) & 0xFF
    return _ALPHABET[tag >> 2] + _ALPHABET[(tag & 3) << 4]


def wrap_id_generator(user: Callable[..., Any], index: int, key: int) -> Callable[..., Any]:
    """A custom ``generate_id`` whose ids (plain or awaited) get worker ``index``'s two characters in front."""
    prefix = tag_prefix(index, key)

    async def later(pending: Any) -> str:
        return prefix + str(await pending)

    def generate_id(request: Any = None) -> Any:
        sid = user(request)
        if inspect.isawaitable(sid):
            return later(sid)
        return prefix + str(sid)

    generate_id.__wrapped__ = user  # type: ignore[attr-defined]
    return generate_id


def owner_of(sid: str, key: int, custom: bool = False) -> Optional[int]:
    """The index of the worker that made ``sid``, or None if it is not one of ours.

    ``custom``: the ids come from a custom ``generate_id`` (``wrap_id_generator``): any length.
    """
    if len(sid) != 20 and not (custom and 2 < len(sid) <= 1024):
        return None
    hi = _B64.get(sid[0])
    lo = _B64.get(sid[1])
    if hi is None or lo is None:
        return None
    # the first byte is the top 6 bits of character 0 and 2 bits of character 1
    return ((hi << 2) | (lo >> 4)) ^ key


class _Counter:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = 0

    def on_message_complete(self) -> None:
        self.done += 1


def _completed(data: bytes) -> int:
    counter = _Counter()
    parser = httptools.HttpRequestParser(counter)
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        pass
    except httptools.HttpParserError:
        pass
    return counter.done


def message_end(data: bytes, count: int) -> int:
    """The offset right after the ``count``-th complete request in ``data``.

    The number of requests a fresh parser completes grows with the prefix it
    is given, so a binary search finds the shortest prefix holding ``count``
    of them.
    """
    if count <= 0:
        return 0
    lo, hi = 0, len(data)
    while lo < hi:
        mid = (lo + hi) // 2
        if _completed(data[:mid]) >= count:
            hi = mid
        else:
            lo = mid + 1
    return lo


class WorkerConnection(HttpConnection):
    """An HTTP connection that remembers what it read, so it can move to another worker.

    ``prefix`` is what the previous worker read from a connection moved
    here; it is parsed before anything else the socket delivers.
    """

    __slots__ = ("_raw", "_raw_size", "_answered", "_moving", "_prefix", "_raw_limit")

    def __init__(self, server: HttpServer, prefix: bytes = b"") -> None:
        super().__init__(server)
        self._raw: Optional[list[bytes]] = []
        self._raw_size = 0
        self._answered = 0
        self._moving = False
        self._prefix = prefix
        self._raw_limit = server.max_header_size + server.max_body_size + 65536

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        prefix, self._prefix = self._prefix, b""
        if prefix:
            # before the loop delivers anything the socket holds: the order stays the client's
            self.data_received(prefix)

    def data_received(self, data: bytes) -> None:
        if self._moving:
            return
        if self.state != _H_WS:
            if self.state == _H_IDLE:
                # nothing unanswered and no partial request: a request starts here
                self._raw = [data]
                self._raw_size = len(data)
                self._answered = 0
            elif self._raw is not None:
                self._raw.append(data)
                self._raw_size += len(data)
                if self._raw_size > self._raw_limit:
                    # a client pipelining this much cannot be moved: it is served here or closed
                    self._raw = None
        super().data_received(data)

    def respond(self, status: int, headers: list[tuple[str, str]], body: bytes = b"",
                close: bool = False) -> None:
        if self._current is not None:
            self._answered += 1
        super().respond(status, headers, body, close)

    def _take_unanswered(self) -> Optional[bytes]:
        """Stop serving here; the bytes of the current request and all after it (None: unknown)."""
        raw = self._raw
        if raw is None:
            return None
        data = b"".join(raw)
        return data[message_end(data, self._answered):]


class _Peer:
    """This worker's connection to another worker's handoff socket (SOCK_SEQPACKET).

    Messages keep their boundaries and carry their descriptors; the socket
    is non-blocking, and what the kernel does not take at once waits in
    ``queue`` (bounded) until the socket is writable.
    """

    __slots__ = ("sock", "queue", "writing")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.queue: deque[tuple[WorkerConnection, bytes, list[int]]] = deque()
        self.writing = False


class Router:
    """Moves connections to the worker owning their session; receives the ones moved here.

    Args:
        index: this worker's index.
        count: how many workers there are.
        directory: the primary's private directory holding the workers' sockets.
        key: the primary's id key (see ``make_id_generator``).
        engine: this worker's Engine.
    """

    def __init__(self, index: int, count: int, directory: str, key: int, engine: Any) -> None:
        self.index = index
        self.count = count
        self.directory = directory
        self.key = key
        self.engine = engine
        self.http: HttpServer = engine.http_server()
        self._listener: Optional[socket.socket] = None
        self._accepted: set[socket.socket] = set()
        self._peers: dict[int, _Peer] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._tasks: set[asyncio.Future[Any]] = set()
        #: connections moved away / received (for tests and logs)
        self.moved_out = 0
        self.moved_in = 0
        #: the engine's ids come from the user's generate_id (with this worker's two characters in front)
        self.custom_ids = False

    def path_of(self, index: int) -> str:
        return os.path.join(self.directory, f"h{index}.sock")

    def install(self) -> None:
        """Make the engine's ids name this worker and route foreign ones."""
        from ..engineio.server import default_generate_id

        user = self.engine.generate_id
        self.custom_ids = user is not default_generate_id
        if self.custom_ids:
            # the user's ids, with two characters in front that name this worker
            self.engine.generate_id = wrap_id_generator(user, self.index, self.key)
        else:
            self.engine.generate_id = make_id_generator(self.index, self.key)
        self.engine.session_router = self.route
        http = self.http
        http._protocol_factory = lambda: WorkerConnection(http)  # type: ignore[method-assign]

    def start(self) -> None:
        """Bind this worker's handoff socket and start receiving connections."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        path = self.path_of(self.index)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.bind(path)
        sock.listen(128)
        sock.setblocking(False)
        self._listener = sock
        loop.add_reader(sock.fileno(), self._on_accept)

    def close(self) -> None:
        """Stop taking connections (other workers then close the ones they would move here)."""
        loop = self._loop
        if loop is None:
            return
        if self._listener is not None:
            loop.remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        for sock in list(self._accepted):
            self._drop_accepted(sock)
        for index in list(self._peers):
            self._drop_peer(index)

    # -- sending ---------------------------------------------------------------

    def route(self, req: Request) -> bool:
        """The engine's ``session_router``: True when the request was moved to its owner."""
        sid = req.query.get("sid")
        if not sid or sid in self.engine.clients:
            return False
        owner = owner_of(sid, self.key, self.custom_ids)
        if owner is None or owner == self.index or owner >= self.count:
            return False
        conn = req.connection
        if not isinstance(conn, WorkerConnection) or conn._current is not req:
            return False
        data = conn._take_unanswered()
        conn._current = None
        conn._queue = []
        if data is None:
            logger.info("cannot move a connection pipelining over %d bytes: closing it", conn._raw_limit)
            conn.abort()
            return True
        conn._moving = True
        # not idle, not handling: nothing here answers, resumes reading or arms a timer again
        conn.state = _H_CLOSED
        conn._cancel_timer()
        if conn.transport is not None:
            conn.transport.pause_reading()
        loop = self._loop or asyncio.get_running_loop()
        self._send_when_flushed(conn, owner, data, loop.time() + _MOVE_DEADLINE)
        return True

    def _send_when_flushed(self, conn: WorkerConnection, owner: int, data: bytes, deadline: float) -> None:
        loop = self._loop
        assert loop is not None
        transport = conn.transport
        if transport is None or transport.is_closing():
            return
        if conn._wbuf.pending or transport.get_write_buffer_size():
            # our answers to the requests before this one must reach the client first
            if loop.time() > deadline:
                logger.info("a connection to move did not drain in %ss: closing it", _MOVE_DEADLINE)
                conn.abort()
                return
            loop.call_later(0.002, self._send_when_flushed, conn, owner, data, deadline)
            return
        raw_sock = transport.get_extra_info("socket")
        if raw_sock is None:
            conn.abort()
            return
        fds = [os.dup(raw_sock.fileno())]
        try:
            if len(data) > _INLINE_MAX:
                mfd = os.memfd_create("fastsio-handoff", os.MFD_CLOEXEC)
                fds.append(mfd)
                os.write(mfd, data)
                msg = _HEADER.pack(_MAGIC, _F_MEMFD, len(data))
            else:
                msg = _HEADER.pack(_MAGIC, 0, len(data)) + data
        except OSError:
            for f in fds:
                os.close(f)
            conn.abort()
            return
        # our descriptor only (the dup travels): the owner's copy keeps the TCP connection open
        transport.close()
        peer = self._peer(owner)
        if peer is None:
            for f in fds:
                os.close(f)
            return
        if len(peer.queue) >= _QUEUE_MAX:
            logger.warning("worker %d is not taking connections: closing one", owner)
            for f in fds:
                os.close(f)
            return
        peer.queue.append((conn, msg, fds))
        if not peer.writing:
            self._drain(owner)

    def _peer(self, index: int) -> Optional[_Peer]:
        peer = self._peers.get(index)
        if peer is not None:
            return peer
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.settimeout(1.0)
        try:
            sock.connect(self.path_of(index))
        except OSError as exc:
            sock.close()
            # the owner is gone (restarting): its sessions went with it
            logger.info("cannot move a connection to worker %d (%s): closing it", index, exc)
            return None
        sock.setblocking(False)
        peer = self._peers[index] = _Peer(sock)
        return peer

    def _drain(self, index: int) -> None:
        peer = self._peers.get(index)
        if peer is None:
            return
        loop = self._loop
        assert loop is not None
        while peer.queue:
            conn, msg, fds = peer.queue[0]
            try:
                peer.sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
            except (BlockingIOError, InterruptedError):
                if not peer.writing:
                    peer.writing = True
                    loop.add_writer(peer.sock.fileno(), self._drain, index)
                return
            except OSError as exc:
                logger.info("worker %d went away (%s): closing %d moved connection(s)", index, exc, len(peer.queue))
                self._drop_peer(index)
                return
            peer.queue.popleft()
            for f in fds:
                os.close(f)
            self.moved_out += 1
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("moved a connection to worker %d: %r", index, msg[_HEADER.size:_HEADER.size + 100])
        if peer.writing:
            peer.writing = False
            loop.remove_writer(peer.sock.fileno())

    def _drop_peer(self, index: int) -> None:
        peer = self._peers.pop(index, None)
        if peer is None:
            return
        if peer.writing and self._loop is not None:
            self._loop.remove_writer(peer.sock.fileno())
        for _conn, _msg, fds in peer.queue:
            for f in fds:
                os.close(f)
        peer.queue.clear()
        peer.sock.close()

    # -- receiving -------------------------------------------------------------

    def _on_accept(self) -> None:
        listener = self._listener
        loop = self._loop
        if listener is None or loop is None:
            return
        for _ in range(64):
            try:
                sock, _addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                logger.exception("handoff socket failed")
                return
            sock.setblocking(False)
            self._accepted.add(sock)
            loop.add_reader(sock.fileno(), self._on_readable, sock)

    def _drop_accepted(self, sock: socket.socket) -> None:
        if sock in self._accepted:
            self._accepted.discard(sock)
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()

    def _on_readable(self, sock: socket.socket) -> None:
        for _ in range(64):
            try:
                msg, ancdata, _flags, _addr = sock.recvmsg(_HEADER.size + _INLINE_MAX,
                                                           socket.CMSG_SPACE(2 * array.array("i").itemsize))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop_accepted(sock)
                return
            fds: list[int] = []
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    arr = array.array("i")
                    arr.frombytes(payload[: len(payload) - (len(payload) % arr.itemsize)])
                    fds.extend(arr)
            if not msg and not fds:
                # the other worker closed its end
                self._drop_accepted(sock)
                return
            try:
                self._adopt(msg, fds)
            except Exception:
                logger.exception("bad handoff message")
                for f in fds:
                    try:
                        os.close(f)
                    except OSError:
                        pass

    def _adopt(self, msg: bytes, fds: list[int]) -> None:
        if len(msg) < _HEADER.size or not fds:
            raise ValueError("short handoff message")
        magic, flags, length = _HEADER.unpack_from(msg)
        if magic != _MAGIC:
            raise ValueError("not a handoff message")
        if flags & _F_MEMFD:
            if len(fds) != 2:
                raise ValueError("handoff without its data descriptor")
            mfd = fds.pop()
            try:
                chunks = []
                got = 0
                os.lseek(mfd, 0, os.SEEK_SET)
                while got < length:
                    chunk = os.read(mfd, min(length - got, 1 << 20))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    got += len(chunk)
                data = b"".join(chunks)
            finally:
                os.close(mfd)
        else:
            data = msg[_HEADER.size:_HEADER.size + length]
        if len(data) != length or len(fds) != 1:
            raise ValueError("truncated handoff message")
        sock = socket.socket(fileno=fds[0])
        sock.setblocking(False)
        http = self.http
        conn = WorkerConnection(http, data)
        loop = self._loop
        assert loop is not None
        self.moved_in += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("took a connection with %d bytes: %r", len(data), data[:120])
        task = asyncio.ensure_future(loop.connect_accepted_socket(lambda: conn, sock))
        self._tasks.add(task)
        task.add_done_callback(self._adopted)

    def _adopted(self, task: "asyncio.Future[Any]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("could not take a moved connection: %s", task.exception())
