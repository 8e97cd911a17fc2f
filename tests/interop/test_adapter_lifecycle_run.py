"""io.run() with a module-level Server: the adapter's async init() runs on the serving loop, close() is awaited."""
from __future__ import annotations

import asyncio
import signal
import sys
import textwrap

import socketio

SCRIPT = textwrap.dedent('''
    import asyncio, sys
    import fastsio

    state = {}

    class Adapter(fastsio.InMemoryAdapter):
        def init(self):
            async def run():
                await asyncio.sleep(0.05)
                state["init_loop"] = asyncio.get_running_loop()
                print("init ran", flush=True)
            return run()

        def close(self):
            async def run():
                await asyncio.sleep(0.01)
                print("close ran", flush=True)
            return run()

    io = fastsio.Server(adapter=Adapter)

    @io.on("connection")
    def on_connection(socket):
        socket.on("same_loop", lambda: state.get("init_loop") is asyncio.get_running_loop())

    print("ready", flush=True)
    io.run(int(sys.argv[1]), host="127.0.0.1")
    print("stopped", flush=True)
''')


async def test_run_inits_adapter_on_serving_loop_and_awaits_close(free_port: int) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", SCRIPT, str(free_port),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        assert (await asyncio.wait_for(proc.stdout.readline(), 20)).strip() == b"ready"
        assert (await asyncio.wait_for(proc.stdout.readline(), 20)).strip() == b"init ran"
        client = socketio.AsyncClient(reconnection=False)
        for _ in range(100):
            try:
                await client.connect(f"http://127.0.0.1:{free_port}", transports=["websocket"])
                break
            except socketio.exceptions.ConnectionError:
                await asyncio.sleep(0.1)
        assert client.connected
        assert await client.call("same_loop", timeout=10) is True
        proc.send_signal(signal.SIGTERM)
        out = await asyncio.wait_for(proc.stdout.read(), 20)
        assert b"close ran" in out and out.index(b"close ran") < out.index(b"stopped")
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        await client.disconnect()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
