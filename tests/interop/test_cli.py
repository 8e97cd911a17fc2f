"""The command line, run for real in a subprocess: ``python -m fastsio serve|demo`` and the ``fastsio`` script.

The served apps live in tests/interop/cli_apps/ (the subprocess runs there, so
``MODULE`` is found from the current directory as a user's would be). The
subprocess inherits FASTSIO_NO_EXTENSIONS, so the pure pass serves pure.
"""
from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Optional

import pytest
import socketio

import fastsio

APPS = Path(__file__).resolve().parent / "cli_apps"
SCRIPT = Path(sys.executable).parent / "fastsio"


class Served:
    """A running ``fastsio`` command."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port
        self.out = ""

    async def wait_listening(self, timeout: float = 20) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.proc.returncode is not None:
                err = await self.proc.stderr.read() if self.proc.stderr else b""
                pytest.fail(f"the command exited with {self.proc.returncode}: {err.decode()[-2000:]}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if loop.time() > deadline:
                    pytest.fail("the command did not listen in time")
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return

    async def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        out, err = await asyncio.wait_for(self.proc.communicate(), 20)
        self.out = out.decode()
        assert self.proc.returncode is not None
        return self.proc.returncode, err.decode()


async def _start(args: list[str], port: Optional[int] = None, script: bool = False) -> Served:
    cmd = [str(SCRIPT)] if script else [sys.executable, "-m", "fastsio"]
    proc = await asyncio.create_subprocess_exec(*cmd, *args, cwd=str(APPS), stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    return Served(proc, port or 0)


@pytest.fixture
async def served() -> AsyncIterator[Callable[..., Any]]:
    procs: list[Served] = []

    async def start(args: list[str], port: Optional[int] = None, script: bool = False) -> Served:
        s = await _start(args, port, script)
        procs.append(s)
        return s

    yield start
    for s in procs:
        if s.proc.returncode is None:
            s.proc.kill()
            await s.proc.wait()


async def _run_to_end(*args: str, timeout: float = 20) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "fastsio", *args, cwd=str(APPS),
                                                stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"fastsio {' '.join(args)} did not exit by itself")
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _talk(port: int, transport: str) -> None:
    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(f"http://127.0.0.1:{port}", transports=[transport], wait_timeout=10)
        assert await client.call("echo", {"a": 1}, timeout=10) == [{"a": 1}]
        expected = "python" if os.environ.get("FASTSIO_NO_EXTENSIONS") == "1" else fastsio.IMPLEMENTATION
        assert await client.call("impl", timeout=10) == expected
        assert await client.call("loop", timeout=10) == "uvloop"
    finally:
        await client.disconnect()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_serve_a_server(served: Any, free_port: int, transport: str) -> None:
    s = await served(["serve", "sio_app:io", "--port", str(free_port), "--log-level", "warning"], free_port)
    await s.wait_listening()
    await _talk(free_port, transport)
    code, err = await s.stop(signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err


async def test_console_script_serves_and_stops_on_sigterm(served: Any, free_port: int) -> None:
    assert SCRIPT.is_file(), "the console script `fastsio` is not installed (pip install -e .)"
    s = await served(["serve", "sio_app:io", "--host", "127.0.0.1", "--port", str(free_port)], free_port,
                     script=True)
    await s.wait_listening()
    await _talk(free_port, "websocket")
    code, err = await s.stop(signal.SIGTERM)
    assert code == 0, err
    assert "serving sio_app:io (fastsio.Server)" in err  # the start-up line at --log-level info


@pytest.mark.parametrize("args, message", [
    (["serve", "missing_app:io"], "fastsio: error: cannot import module 'missing_app': no module named 'missing_app'"),
    (["serve", "broken_app:io"], "fastsio: error: cannot import module 'broken_app': ZeroDivisionError: "
                                 "division by zero (broken_app.py:5)"),
    (["serve", "sio_app:nothing"], "fastsio: error: module 'sio_app' has no attribute 'nothing'"),
    (["serve", "sio_app:not_a_server"], "fastsio: error: sio_app:not_a_server is an int, not a fastsio.Server"),
    (["serve", "sio_app"], "fastsio: error: target 'sio_app' must be MODULE:ATTR"),
    (["serve", "sio_app:io", "--app", "sio_app:not_a_server"], "fastsio: error: --app sio_app:not_a_server is an int, "
                                                                "not an ASGI app"),
    (["serve", "sio_app:io", "--port", "http"], "argument --port: must be a number, not 'http'"),
    (["serve", "sio_app:io", "--workers", "many"], "argument --workers: must be a number or 'auto'"),
    ([], "usage: fastsio"),
])
async def test_errors_are_one_line_with_status_2(args: list[str], message: str) -> None:
    code, out, err = await _run_to_end(*args)
    assert code == 2, (out, err)
    assert message in err, err
    assert "Traceback" not in err
    if args:
        assert len(err.strip().splitlines()) == 1, err


async def test_port_in_use(free_port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", free_port))
        busy.listen(1)
        code, out, err = await _run_to_end("serve", "sio_app:io", "--port", str(free_port), "--log-level", "error")
    assert code == 2, (out, err)
    assert err.strip() == f"fastsio: error: port {free_port} on 127.0.0.1 is in use"


async def test_workers(served: Any, free_port: int) -> None:
    args = ["serve", "sio_app:io", "--port", str(free_port), "--workers", "2", "--log-level", "warning"]
    if "workers" not in inspect.signature(fastsio.Server.run).parameters:
        code, out, err = await _run_to_end(*args)
        assert code == 2
        assert err.strip() == "fastsio: error: --workers 2: the multi-worker mode is not available yet in " \
                              "this version of fastsio (use --workers 1)"
        return
    s = await served(args, free_port)  # pragma: no cover - once issue 10 lands
    await s.wait_listening()
    await _talk(free_port, "websocket")
    code, err = await s.stop(signal.SIGTERM)
    assert code == 0, err


async def test_demo(served: Any, free_port: int) -> None:
    s = await served(["demo", "--port", str(free_port)], free_port)
    await s.wait_listening()
    reader, writer = await asyncio.open_connection("127.0.0.1", free_port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    page = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert page.startswith(b"HTTP/1.1 200 OK")
    assert b"/socket.io/socket.io.min.js" in page
    code, err = await s.stop(signal.SIGINT)
    assert code == 0, err


@pytest.mark.parametrize("args", [["fastapi_app:both"], ["fastapi_app:io", "--app", "fastapi_app:api"]])
async def test_serve_fastapi_beside_socketio_on_one_port(served: Any, free_port: int, run_node: Any,
                                                         args: list[str]) -> None:
    s = await served(["serve", *args, "--port", str(free_port), "--log-level", "warning"], free_port)
    await s.wait_listening()
    run = (await run_node("one_port.mjs", f"port={free_port}", "mode=websocket", "clients=2")).check()
    assert run.one("hello")["body"] == {"hello": "world", "state": "started"}
    assert run.one("news")["got"] == ["from http"] * 2
    code, err = await s.stop(signal.SIGINT)
    assert code == 0, err
    assert s.out.splitlines() == ["lifespan startup", "lifespan shutdown"]


async def test_serve_with_app_twice_is_an_error() -> None:
    code, out, err = await _run_to_end("serve", "fastapi_app:both", "--app", "fastapi_app:api")
    assert code == 2
    assert err.strip() == "fastsio: error: fastapi_app:both already hosts an ASGI app (fastsio.asgi.ASGIApp); drop --app"


async def test_a_plain_asgi_app_is_the_wrong_kind() -> None:
    code, out, err = await _run_to_end("serve", "fastapi_app:api")
    assert code == 2
    assert err.strip() == ("fastsio: error: fastapi_app:api is a FastAPI, not a fastsio.Server, a "
                           "fastsio.compat.AsyncServer or an ASGI app wrapping one (an ASGI app without "
                           "Socket.IO goes beside a server with --app)")


@pytest.mark.parametrize("attr", ["sio", "app"])
async def test_serve_a_compat_server_or_its_asgiapp(served: Any, free_port: int, attr: str) -> None:
    """``fastsio.compat.AsyncServer`` and ``fastsio.compat.ASGIApp`` (python-socketio's API on fastsio)."""
    try:
        import fastsio.compat  # noqa: F401
    except ImportError:
        # fastsio.compat not there yet: the command says so in one line
        code, out, err = await _run_to_end("serve", f"compat_app:{attr}", "--port", str(free_port))
        assert code == 2 and err.startswith("fastsio: error: cannot import module 'compat_app': "), err
        return
    s = await served(["serve", f"compat_app:{attr}", "--port", str(free_port), "--log-level", "warning"], free_port)
    await s.wait_listening()
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(f"http://127.0.0.1:{free_port}", transports=["websocket"], wait_timeout=10)
    assert await client.call("echo", {"a": 1}, timeout=10) == {"a": 1}
    await client.disconnect()
    if attr == "app":
        reader, writer = await asyncio.open_connection("127.0.0.1", free_port)
        writer.write(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"hello":"compat"}')
    code, err = await s.stop(signal.SIGINT)
    assert code == 0, err
