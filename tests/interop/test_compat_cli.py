"""``python -m fastsio serve`` runs a fastsio.compat app (tests/compat_apps/latency.py) natively."""
from __future__ import annotations

import asyncio
import inspect
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

import fastsio
from compat_support import http_get
from sio_helpers import WAIT, connect

APPS = Path(__file__).resolve().parents[1] / "compat_apps"
pytestmark = pytest.mark.timeout(60)


async def start_cli(target: str, port: int) -> Any:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), env.get("PYTHONPATH", "")])
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fastsio", "serve", target, "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def wait_listening(proc: Any, port: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while loop.time() < deadline:
        if proc.returncode is not None:
            out, err = await proc.communicate()
            pytest.fail(f"fastsio serve exited {proc.returncode}: {err.decode()[-2000:]}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    pytest.fail("fastsio serve did not listen")


async def stop(proc: Any) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


async def test_cli_serves_a_compat_async_server(free_port: int, clients: Any) -> None:
    proc = await start_cli("latency:sio", free_port)
    try:
        await wait_listening(proc, free_port)
        c = clients()
        got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        c.on("pong_from_server", lambda: got.set_result(True))
        await connect(c, free_port)
        await c.emit("ping_from_client")
        assert await asyncio.wait_for(got, WAIT) is True
        await c.disconnect()
    finally:
        await stop(proc)


async def test_cli_serves_a_compat_asgi_app(free_port: int, clients: Any) -> None:
    proc = await start_cli("latency:app", free_port)
    if "app" not in inspect.signature(fastsio.Server.run).parameters:
        # hosting the other routes natively comes with issue 12 section 3 (io.run(app=...))
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 2 and b"not available yet" in err, err
        return
    try:
        await wait_listening(proc, free_port)
        status, ctype, body = await http_get(free_port, "/")
        assert status == 200 and "latency page" in body
        c = clients()
        got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        c.on("pong_from_server", lambda: got.set_result(True))
        await connect(c, free_port)
        await c.emit("ping_from_client")
        assert await asyncio.wait_for(got, WAIT) is True
        await c.disconnect()
    finally:
        await stop(proc)
