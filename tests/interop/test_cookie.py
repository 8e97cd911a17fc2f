"""The session cookie: the same Set-Cookie as Node socket.io 4.8 (live), python-engineio's through compat.

Node renders the cookie with the npm ``cookie`` package on each handshake;
fastsio checks the option at construction and renders it once
(fastsio/engineio/cookie.py). The Node side here is a live server
(tests/peers/cookie_headers.mjs); the python-socketio side runs
python-socketio under uvicorn.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import aiohttp
import pytest
import socketio as pysio

import fastsio
import fastsio.compat as socketio
from conftest import RunNode

UTC = dt.timezone.utc
# (Node's option, fastsio's option): every attribute of the npm cookie package, and engine.io's defaults
CASES: list[tuple[Any, Any]] = [
    (True, True),
    ({"name": "sess"}, {"name": "sess"}),
    ({"name": "sess", "path": "/app", "httpOnly": False, "sameSite": "strict", "maxAge": 60.7,
      "domain": "example.com", "secure": True},
     {"name": "sess", "path": "/app", "http_only": False, "same_site": "strict", "max_age": 60.7,
      "domain": "example.com", "secure": True}),
    ({"name": "s", "sameSite": True, "partitioned": True, "priority": "HIGH",
      "expires": {"$date": "2030-01-02T03:04:05Z"}},
     {"name": "s", "same_site": True, "partitioned": True, "priority": "HIGH",
      "expires": dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)}),
    ({"name": "p", "path": False}, {"name": "p", "path": False}),
    ({"sameSite": "none", "secure": True, "priority": "low"}, {"same_site": "none", "secure": True, "priority": "low"}),
    ({"sameSite": False, "httpOnly": False, "maxAge": 0}, {"same_site": False, "http_only": False, "max_age": 0}),
]


async def handshake_cookie(port: int, headers: Any = None) -> tuple[int, str, "Any"]:
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling"
        async with http.get(url, headers=headers or {}) as resp:
            body = await resp.text()
        if resp.status == 200:
            # close the session ("1"), so the server has nothing to wait for when it stops
            async with http.post(f"{url}&sid={json.loads(body[1:])['sid']}", data=b"1") as closed:
                await closed.read()
        return resp.status, body, resp.headers


async def test_set_cookie_is_nodes_byte_for_byte(run_node: RunNode, free_port: int) -> None:
    cases = base64.b64encode(json.dumps([node for node, _ in CASES]).encode()).decode()
    run = (await run_node("cookie_headers.mjs", f"cases={cases}", timeout=30)).check()
    node_headers = {line["i"]: line["header"] for line in run.events("cookie")}
    assert len(node_headers) == len(CASES), run.describe()
    for i, (_, option) in enumerate(CASES):
        io = fastsio.Server(cookie=option)
        await io.listen(free_port, host="127.0.0.1")
        try:
            status, body, headers = await handshake_cookie(free_port)
        finally:
            await io.close(timeout=0.2)
        sid = json.loads(body[1:])["sid"]
        assert status == 200
        assert headers["Set-Cookie"].replace(sid, "SID") == node_headers[i], (i, option)


@pytest.mark.parametrize("option, error", [
    ({"nmae": "io"}, TypeError),            # unknown key: named at construction
    ({"name": "a b"}, ValueError),          # not a cookie token
    ({"name": "io\r\nX-Evil: 1"}, ValueError),
    ({"path": "/a;Domain=evil"}, ValueError),
    ({"path": "/a\r\n"}, ValueError),
    ({"domain": "evil.example; Secure"}, ValueError),
    ({"same_site": "sometimes"}, ValueError),
    ({"priority": "urgent"}, ValueError),
    ({"max_age": "60"}, TypeError),
    ({"max_age": float("nan")}, TypeError),
    ({"max_age": True}, TypeError),
    ({"expires": "tomorrow"}, TypeError),
    ("io", TypeError),                      # Node takes a dict or a boolean
])
def test_a_bad_cookie_option_fails_at_construction(option: Any, error: type) -> None:
    # Node's cookie package throws on each handshake instead
    with pytest.raises(error):
        fastsio.Server(cookie=option)
    with pytest.raises(error):
        fastsio.engineio.Engine(cookie=option)


async def test_a_session_id_with_unsafe_characters_is_percent_encoded(free_port: int) -> None:
    io = fastsio.Server(cookie=True)
    io.engine.generate_id = lambda req: "a;b c"
    await io.listen(free_port, host="127.0.0.1")
    try:
        status, _, headers = await handshake_cookie(free_port)
    finally:
        await io.close(timeout=0.2)
    # as encodeURIComponent: the id cannot end the cookie or add an attribute
    assert status == 200 and headers["Set-Cookie"] == "io=a%3Bb%20c; Path=/; HttpOnly; SameSite=Lax"


def _attributes(header: str, sid: str) -> tuple[str, frozenset[tuple[str, str]]]:
    first, *rest = [part.strip() for part in header.split(";")]
    attrs = set()
    for part in rest:
        key, _, value = part.partition("=")
        attrs.add((key.lower(), value))
    return first.replace(sid, "SID"), frozenset(attrs)


@pytest.mark.parametrize("cookie", [
    "sess",
    {"name": "sess", "path": "/app", "SameSite": "Strict", "Secure": True, "HttpOnly": True, "Max-Age": "60"},
    {"name": "sess", "Domain": "example.com"},
    {"name": "sess", "Expires": "Wed, 02 Jan 2030 03:04:05 GMT", "samesite": "None", "secure": True},
])
async def test_compat_cookie_has_python_engineios_attributes(cookie: Any, free_port: int) -> None:
    from compat_support import serve

    got = {}
    for name, make, app in (("python-socketio", pysio.AsyncServer, pysio.ASGIApp),
                            ("fastsio", socketio.AsyncServer, socketio.ASGIApp)):
        sio = make(async_mode="asgi", cookie=cookie)
        async with serve("uvicorn" if name == "python-socketio" else "native", app(sio), sio, free_port):
            status, body, headers = await handshake_cookie(free_port)
        assert status == 200, (name, body)
        got[name] = _attributes(headers["Set-Cookie"], json.loads(body[1:])["sid"])
    # attribute names are case-insensitive (RFC 6265) and their order is free
    assert got["fastsio"] == got["python-socketio"]


def test_compat_unknown_cookie_attribute_fails_at_construction() -> None:
    with pytest.raises(TypeError, match="unknown cookie attribute 'Colour'"):
        socketio.AsyncServer(cookie={"name": "io", "Colour": "blue"})
