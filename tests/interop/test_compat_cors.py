"""fastsio.compat's ``cors_allowed_origins`` / ``cors_credentials`` on the wire, against python-socketio's.

python-socketio runs under uvicorn, fastsio.compat on fastsio's own server;
the same requests go to both. The headers are not the same bytes (fastsio
answers preflights as Node's ``cors`` package does: 204, its method list, a
Vary header), so what is compared is what a browser acts on: whether the
handshake is accepted, ``Access-Control-Allow-Origin``,
``Access-Control-Allow-Credentials``, and for a preflight whether GET and the
requested header are allowed. A refused origin is 403 here and 400 there
(documented in docs/migrating-from-python-socketio.md).
"""
from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
import socketio as pysio

import fastsio.compat as socketio

ORIGINS = (None, "http://a.example", "http://b.example", "http://evil.example")


async def what_a_browser_sees(port: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling"
    seen: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http:
        for origin in ORIGINS:
            headers = {"Origin": origin} if origin else {}
            async with http.get(url, headers=headers) as resp:
                body = await resp.read()
                allow = resp.headers.get("Access-Control-Allow-Origin")
                # without Allow-Origin a browser reads nothing, whatever else is there
                seen[f"GET {origin}"] = (resp.status == 200, allow,
                                         resp.headers.get("Access-Control-Allow-Credentials") if allow else None)
            if resp.status == 200:
                # closed at once, so neither server waits for this session when it stops
                sid = json.loads(body[1:])["sid"]
                async with http.post(f"{url}&sid={sid}", data=b"1", headers=headers) as closed:
                    await closed.read()
            if origin is None:
                continue  # a browser sends no preflight without an Origin
            preflight = {**headers, "Access-Control-Request-Method": "GET",
                         "Access-Control-Request-Headers": "x-token"}
            async with http.options(url, headers=preflight) as resp:
                await resp.read()
                allow = resp.headers.get("Access-Control-Allow-Origin")
                methods = resp.headers.get("Access-Control-Allow-Methods", "")
                seen[f"OPTIONS {origin}"] = (
                    allow if 200 <= resp.status < 300 else None,
                    resp.headers.get("Access-Control-Allow-Credentials") if allow else None,
                    "GET" in methods.replace(" ", "").split(",") if allow else None,
                    resp.headers.get("Access-Control-Allow-Headers") if allow else None,
                )
    return seen


@pytest.mark.parametrize("options", [
    {},
    {"cors_allowed_origins": []},
    {"cors_allowed_origins": "*"},
    {"cors_allowed_origins": "*", "cors_credentials": False},
    {"cors_allowed_origins": "http://a.example"},
    {"cors_allowed_origins": ["http://a.example", "http://b.example"], "cors_credentials": False},
])
async def test_a_browser_sees_what_python_socketio_answers(options: dict[str, Any], free_port: int) -> None:
    from compat_support import serve

    got = {}
    for name, make, app, mode in (("python-socketio", pysio.AsyncServer, pysio.ASGIApp, "uvicorn"),
                                  ("fastsio", socketio.AsyncServer, socketio.ASGIApp, "native")):
        sio = make(async_mode="asgi", **options)
        async with serve(mode, app(sio), sio, free_port):
            got[name] = await what_a_browser_sees(free_port)
    assert got["fastsio"] == got["python-socketio"]
