"""The README's FastAPI-on-one-port example, run as written: ``python app.py`` and the command line."""
from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
import socketio

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> str:
    text = README.read_text()
    m = re.search(r"<!-- example: one-port[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert m, "the one-port example is missing from README.md"
    return m.group(1)


async def _wait_listening(proc: asyncio.subprocess.Process, port: int) -> None:
    for _ in range(400):
        if proc.returncode is not None:
            pytest.fail(f"exited with {proc.returncode}")
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    pytest.fail("did not listen")


@pytest.mark.parametrize("how", ["main", "cli"])
async def test_readme_one_port_example(tmp_path: Path, free_port: int, how: str) -> None:
    code = _example()
    assert "io.run(port=3000, app=api)" in code
    (tmp_path / "app.py").write_text(code.replace("port=3000", f"port={free_port}, host='127.0.0.1'"))
    args = ["app.py"] if how == "main" else ["-m", "fastsio", "serve", "app:io", "--app", "app:api",
                                              "--port", str(free_port)]
    proc = await asyncio.create_subprocess_exec(sys.executable, *args, cwd=str(tmp_path),
                                                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        await _wait_listening(proc, free_port)
        client = socketio.AsyncClient(reconnection=False)
        news: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        client.on("news", lambda msg: news.done() or news.set_result(msg))
        await client.connect(f"http://127.0.0.1:{free_port}", transports=["websocket"], wait_timeout=10)
        assert await client.call("ping", timeout=10) == "pong"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{free_port}/hello") as r:
                assert await r.json() == {"clients": 1}
        assert await asyncio.wait_for(news, 10) == "someone said hello"
        await client.disconnect()
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
