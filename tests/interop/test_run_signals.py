"""io.run(): a blocking server on uvloop that closes gracefully on SIGINT / SIGTERM."""
from __future__ import annotations

import asyncio
import signal
import sys
import textwrap

import pytest
import socketio

SCRIPT = textwrap.dedent('''
    import sys
    import fastsio
    io = fastsio.Server(int(sys.argv[1]))

    @io.on("connection")
    def on_connection(socket):
        socket.on("disconnect", lambda reason: print("disconnect", reason, flush=True))
        socket.on("loop", lambda: type(__import__("asyncio").get_running_loop()).__module__)

    print("ready", flush=True)
    io.run(host="127.0.0.1")
    print("stopped", flush=True)
''')


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_run_closes_gracefully_on_signal(free_port: int, sig: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", SCRIPT, str(free_port),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        assert (await asyncio.wait_for(proc.stdout.readline(), 20)).strip() == b"ready"
        client = socketio.AsyncClient(reconnection=False)
        disconnected = asyncio.Event()
        client.on("disconnect", lambda *reason: disconnected.set())
        for _ in range(100):
            try:
                await client.connect(f"http://127.0.0.1:{free_port}", transports=["websocket"])
                break
            except socketio.exceptions.ConnectionError:
                await asyncio.sleep(0.1)
        assert client.connected
        assert await client.call("loop", timeout=10) == "uvloop"
        proc.send_signal(sig)
        out = await asyncio.wait_for(proc.stdout.read(), 20)
        assert b"disconnect server shutting down" in out
        assert b"stopped" in out
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        await asyncio.wait_for(disconnected.wait(), 10)
        await client.disconnect()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
