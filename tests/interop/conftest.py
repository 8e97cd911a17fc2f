"""Fixtures for the interop tests: live fastsio servers and Node.js peers.

A missing Node.js or npm peer fails the test: `bash ci/test.sh` installs them
(ci/setup.sh), and a silent skip would hide a broken setup.

The servers run on uvloop, as in production (``io.run()`` installs it); the
modules in ``STDLIB_LOOP_TOO`` (ASGI, the core interop with the npm
clients) and tests marked ``stdlib_loop`` run on the stdlib asyncio loop as
well, since ``ASGIApp`` users may run either: their ids end in ``[uvloop]``
and ``[asyncio]``.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Optional

import pytest
import socketio
import uvloop
from raw import EngineFixture, close_all

from fastsio.engineio import transport as eio_transport

#: interop modules that also run on the stdlib asyncio loop
STDLIB_LOOP_TOO = frozenset((
    "test_asgi.py", "test_js_client.py", "test_engineio_client.py",
))

_UVLOOP_ONLY = {"uvloop": uvloop.new_event_loop}
_BOTH_LOOPS = {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}


def pytest_asyncio_loop_factories(config: Any, item: Any) -> Any:
    """uvloop for every interop test; the stdlib loop too for a smaller set (pytest-asyncio hook)."""
    if item.path.name in STDLIB_LOOP_TOO or item.get_closest_marker("stdlib_loop") is not None:
        return _BOTH_LOOPS
    return _UVLOOP_ONLY


PEERS = Path(__file__).resolve().parent.parent / "peers"
NODE_MODULES = PEERS / "node_modules"
REQUIRED_PEERS = ("engine.io-client", "socket.io-client", "socket.io-client-v2")


def _node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the interop tests need Node.js 20 (run `bash ci/test.sh`)")
    for peer in REQUIRED_PEERS:
        if not (NODE_MODULES / peer / "package.json").is_file():
            pytest.fail(f"npm peer {peer!r} is missing from tests/peers/node_modules (run `bash ci/setup.sh`)")
    return node


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@dataclass
class NodeRun:
    """What a node driver printed: one JSON object per stdout line."""

    script: str
    args: tuple[str, ...]
    returncode: Optional[int]
    lines: list[dict[str, Any]]
    stdout: str
    stderr: str
    timed_out: bool = False
    other: list[str] = field(default_factory=list)

    def events(self, name: str) -> list[dict[str, Any]]:
        """Every line whose ``event`` is ``name``, in order."""
        return [line for line in self.lines if line.get("event") == name]

    def one(self, name: str) -> dict[str, Any]:
        """The single line whose ``event`` is ``name`` (fails otherwise)."""
        found = self.events(name)
        assert len(found) == 1, f"expected one {name!r} line, got {len(found)}\n{self.describe()}"
        return found[0]

    def describe(self) -> str:
        """A readable dump for assertion messages."""
        out = "\n".join(json.dumps(line) for line in self.lines)
        return (
            f"node {self.script} {' '.join(self.args)}: exit {self.returncode}"
            f"{' (timed out)' if self.timed_out else ''}\n--- stdout\n{out}\n"
            + ("\n".join(self.other) + "\n" if self.other else "")
            + f"--- stderr\n{self.stderr[-4000:]}"
        )

    def check(self) -> "NodeRun":
        """Asserts the driver finished by itself with exit code 0."""
        assert not self.timed_out and self.returncode == 0, self.describe()
        return self


RunNode = Callable[..., Awaitable[NodeRun]]


@pytest.fixture
def run_node() -> RunNode:
    """``await run_node("driver.mjs", *args, timeout=30, env={})`` -> NodeRun.

    The driver runs as an asyncio subprocess, so the server under test keeps
    serving in this test's loop meanwhile. On timeout it is killed and the
    NodeRun says so (``check()`` then fails with everything it printed).
    """
    node = _node_binary()

    async def run(script: str, *args: Any, timeout: float = 30, env: Optional[dict[str, str]] = None) -> NodeRun:
        full_env = dict(os.environ)
        full_env.pop("NODE_OPTIONS", None)
        full_env["NODE_PATH"] = str(NODE_MODULES)
        if env:
            full_env.update(env)
        str_args = tuple(str(a) for a in args)
        proc = await asyncio.create_subprocess_exec(
            node, str(PEERS / script), *str_args,
            cwd=str(PEERS), env=full_env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        timed_out = False
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            timed_out = True
            proc.kill()
            out, err = await proc.communicate()
        stdout = out.decode("utf-8", "replace")
        lines: list[dict[str, Any]] = []
        other: list[str] = []
        for raw in stdout.splitlines():
            raw = raw.strip()
            if not raw:
                continue
            try:
                value = json.loads(raw)
            except ValueError:
                other.append(raw)
                continue
            if isinstance(value, dict):
                lines.append(value)
            else:
                other.append(raw)
        return NodeRun(script, str_args, proc.returncode, lines, stdout, err.decode("utf-8", "replace"), timed_out, other)

    return run


ServerFactory = Callable[..., Awaitable[Any]]

#: the close timeout of the fixtures' teardown: a test's clients are gone by then, and a polling
#: session that no GET will come for again would otherwise hold the close for engine.io's
#: 1 s polling grace (the graceful close itself is tested where it is asserted)
TEARDOWN_CLOSE_TIMEOUT = 0.2


async def _listening(make: Callable[..., Any], free_port: int) -> AsyncIterator[ServerFactory]:
    """The body of sio_server and eio_server: ``await start(**options)`` builds ``make(**options)``,
    listens on 127.0.0.1 (``free_port`` first, then other free ports) and returns (server, port);
    every one is closed after the test."""
    servers: list[Any] = []

    async def start(**options: Any) -> Any:
        server = make(**options)
        port = free_port if not servers else _another_port()
        await server.listen(port, host="127.0.0.1")
        servers.append(server)
        return server, port

    yield start
    for server in servers:
        await asyncio.wait_for(server.close(timeout=TEARDOWN_CLOSE_TIMEOUT), 10)


@pytest.fixture
async def sio_server(free_port: int) -> AsyncIterator[ServerFactory]:
    """``io, port = await sio_server(**options)``: a fastsio.Server listening
    on 127.0.0.1:port in this test's loop, closed after the test. Register
    handlers before starting the node driver."""
    import fastsio

    async for start in _listening(fastsio.Server, free_port):
        yield start


@pytest.fixture
async def eio_server(free_port: int) -> AsyncIterator[ServerFactory]:
    """``engine, port = await eio_server(**options)``: a standalone fastsio
    Engine (path /engine.io/) on 127.0.0.1:port, closed after the test."""
    from fastsio.engineio import Engine

    def make(**options: Any) -> Any:
        options.setdefault("path", "/engine.io/")
        return Engine(**options)

    async for start in _listening(make, free_port):
        yield start


def _another_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[None]]:
    """``await wait_until(predicate, timeout=10, what="...")``: polls on the
    loop until ``predicate()`` is true; fails after ``timeout`` seconds."""

    async def wait(predicate: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                pytest.fail(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)

    return wait


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., socketio.AsyncClient]]:
    """``make(**kw)`` -> a new AsyncClient, disconnected after the test."""
    made: list[socketio.AsyncClient] = []

    def make(**kw: Any) -> socketio.AsyncClient:
        kw.setdefault("reconnection", False)
        c = socketio.AsyncClient(**kw)
        made.append(c)
        return c

    yield make
    for c in made:
        try:
            await asyncio.wait_for(c.disconnect(), 5)
        except Exception:
            pass


# -- raw engines (tests/interop/raw.py) ---------------------------------------------

Start = Callable[..., Awaitable[EngineFixture]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """``fx = await start(**engine_options)``: an echoing engine on 127.0.0.1, stopped after the test.

    A module that needs other defaults defines its own ``start`` (test_http_deadlines.py).
    """
    fixtures: list[EngineFixture] = []

    async def _start(**options: Any) -> EngineFixture:
        fx = await EngineFixture.start(**options)
        fixtures.append(fx)
        return fx

    yield _start
    await close_all()  # what EngineFixture.stop() does, with the short close
    for fx in fixtures:
        await asyncio.wait_for(fx.engine.close(timeout=TEARDOWN_CLOSE_TIMEOUT), 10)


@pytest.fixture
def poll_body_counts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often a PreparedMessage built a polling body and compressed one (counting wrappers)."""
    seen = {"payload": 0, "compress": 0}
    payload, compress = eio_transport.poll_payload, eio_transport.http_compress

    def counting_payload(*args: Any) -> Any:
        seen["payload"] += 1
        return payload(*args)

    def counting_compress(*args: Any) -> Any:
        seen["compress"] += 1
        return compress(*args)

    monkeypatch.setattr(eio_transport, "poll_payload", counting_payload)
    monkeypatch.setattr(eio_transport, "http_compress", counting_compress)
    return seen
