"""serve_client: the socket.io-client bundle over HTTP, with ETag/304, and a clear 404 when absent."""
from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

import fastsio
import fastsio.server as server_module

STATIC = Path(server_module.__file__).parent / "static"


async def test_bundle_with_etag_and_304(free_port: int) -> None:
    if not (STATIC / "socket.io.min.js").is_file():
        pytest.fail("client bundle missing from fastsio/static (run `bash ci/setup.sh`)")
    io = fastsio.Server()
    await io.listen(free_port, host="127.0.0.1")
    try:
        async with aiohttp.ClientSession() as s:
            for name in ("socket.io.js", "socket.io.min.js", "socket.io.esm.min.js", "socket.io.min.js.map"):
                r = await s.get(f"http://127.0.0.1:{free_port}/socket.io/{name}")
                body = await r.read()
                assert r.status == 200, name
                assert body == (STATIC / name).read_bytes()
                etag = r.headers["ETag"]
                r2 = await s.get(f"http://127.0.0.1:{free_port}/socket.io/{name}", headers={"If-None-Match": etag})
                assert r2.status == 304 and await r2.read() == b""
            io.serve_client(False)
            r = await s.get(f"http://127.0.0.1:{free_port}/socket.io/socket.io.js")
            assert r.status == 404
    finally:
        await io.close()


async def test_absent_bundle_is_404_with_one_log_line(free_port: int, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(server_module, "_STATIC_DIR", str(tmp_path))
    monkeypatch.setattr(server_module, "_warned_missing_bundle", False)
    io = fastsio.Server()
    await io.listen(free_port, host="127.0.0.1")
    try:
        with caplog.at_level(logging.WARNING, logger="fastsio.server"):
            async with aiohttp.ClientSession() as s:
                for _ in range(3):
                    r = await s.get(f"http://127.0.0.1:{free_port}/socket.io/socket.io.js")
                    assert r.status == 404
        lines = [r for r in caplog.records if "client bundle" in r.getMessage()]
        assert len(lines) == 1
        assert "ci/setup.sh" in lines[0].getMessage()
    finally:
        await io.close()
