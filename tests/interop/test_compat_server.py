"""fastsio.compat.AsyncServer's python-socketio contract, driven by python-socketio's AsyncClient
on fastsio's own server (and the npm client where the payload shape matters)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest
import socketio as pysio

import fastsio
import fastsio.compat as socketio
from sio_helpers import WAIT
from sio_helpers import connect as client_connect

pytestmark = pytest.mark.timeout(60)


async def start(free_port: int, **options: Any) -> socketio.AsyncServer:
    sio = socketio.AsyncServer(**options)
    await sio.fastsio_server.listen(free_port, host="127.0.0.1")
    return sio


def future() -> "asyncio.Future[Any]":
    return asyncio.get_running_loop().create_future()


async def test_options_are_checked_and_translated() -> None:
    with pytest.raises(TypeError, match="did you mean 'ping_interval'"):
        socketio.AsyncServer(ping_intervl=3)
    with pytest.raises(ValueError, match="async_mode='aiohttp'"):
        socketio.AsyncServer(async_mode="aiohttp")
    sio = socketio.AsyncServer(async_mode="asgi", ping_interval=(10, 5), ping_timeout=4, max_http_buffer_size=500,
                               allow_upgrades=False, http_compression=True, compression_threshold=200,
                               cookie="sess", cors_allowed_origins=["http://a.example"], cors_credentials=False,
                               monitor_clients=True, transports=["websocket"], engineio_logger=False)
    eng = sio.fastsio_server.engine
    assert isinstance(sio.fastsio_server, fastsio.Server)
    assert eng.ping_interval == 10 and eng.ping_timeout == 9 and eng.max_http_buffer_size == 500
    assert eng.allow_upgrades is False and eng.compression_threshold == 200 and eng.transports == ("websocket",)
    assert eng.cookie == {"name": "sess", "path": "/", "same_site": "lax", "http_only": False} and eng.cors == {"origin": ["http://a.example"], "credentials": False}
    assert socketio.AsyncServer().fastsio_server.engine.ping_interval == 25
    # a native fastsio option passes through
    assert socketio.AsyncServer(max_buffered_bytes=1234).fastsio_server.engine.max_buffered_bytes == 1234


async def test_instrument_takes_python_socketios_auth(free_port: int, clients: Any) -> None:
    sio = await start(free_port)
    with pytest.raises(ValueError):
        sio.instrument()
    sio.instrument(auth={"username": "admin", "password": "python"})
    wrong = clients()
    with pytest.raises(pysio.exceptions.ConnectionError):
        await client_connect(wrong, free_port, namespaces=["/admin"], auth={"username": "admin", "password": "no"})
    admin = clients()
    await client_connect(admin, free_port, namespaces=["/admin"], auth={"username": "admin", "password": "python"})
    assert admin.connected
    await sio.shutdown()


async def test_connect_refusals_have_python_socketios_payloads(free_port: int, clients: Any) -> None:
    sio = await start(free_port)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> Any:
        kind = (auth or {}).get("kind")
        if kind == "false":
            return False
        if kind == "one":
            raise socketio.exceptions.ConnectionRefusedError("no way")
        if kind == "two":
            raise socketio.exceptions.ConnectionRefusedError("no way", {"code": 4})
        if kind == "three":
            raise socketio.exceptions.ConnectionRefusedError("no", 1, 2)
        if kind == "builtin":
            raise ConnectionRefusedError("x")
        return None

    expected = {
        "false": {"message": "Connection rejected by server"},
        "one": {"message": "no way"},
        "two": {"message": "no way", "data": {"code": 4}},
        "three": {"message": "no", "data": [1, 2]},
        "builtin": {"message": "Connection refused by server"},
    }
    for kind, payload in expected.items():
        c = clients()
        got = future()
        c.on("connect_error", lambda data, got=got: got.done() or got.set_result(data))
        with pytest.raises(pysio.exceptions.ConnectionError):
            await connect_client(c, free_port, auth={"kind": kind})
        assert await asyncio.wait_for(got, WAIT) == payload, kind
    ok = clients()
    await connect_client(ok, free_port, auth={"kind": "ok"})
    assert ok.connected
    await sio.shutdown()


async def connect_client(c: Any, port: int, **kw: Any) -> None:
    await client_connect(c, port, **kw)


async def test_handlers_acks_catch_all_and_sessions(free_port: int, clients: Any) -> None:
    sio = await start(free_port, namespaces="*")
    seen: list[Any] = []

    @sio.event
    async def connect(sid: str, environ: dict[str, Any]) -> None:
        async with sio.session(sid) as session:
            session["user"] = environ.get("HTTP_X_USER")
        seen.append(("connect", environ["PATH_INFO"], environ["REMOTE_ADDR"], "EIO=4" in environ["QUERY_STRING"]))

    @sio.on("sum")
    def total(sid: str, a: int, b: int) -> int:
        return a + b

    @sio.on("pair")
    async def pair(sid: str) -> tuple[int, str]:
        return 1, "two"

    @sio.on("whoami")
    async def whoami(sid: str) -> Any:
        return (await sio.get_session(sid))["user"], sio.transport(sid)

    @sio.on("*")
    async def any_event(event: str, sid: str, *args: Any) -> str:
        return f"caught {event} {list(args)}"

    @sio.on("*", namespace="*")
    def any_namespace(event: str, namespace: str, sid: str, *args: Any) -> str:
        return f"{namespace} {event}"

    @sio.event
    def disconnect(sid: str, reason: str) -> None:
        seen.append(("disconnect", reason))

    c = clients()
    await client_connect(c, free_port, headers={"X-User": "ann"}, namespaces=["/", "/other"])
    assert seen[0] == ("connect", "/socket.io/", "127.0.0.1", True)
    assert await c.call("sum", (2, 3), timeout=WAIT) == 5
    assert await c.call("pair", timeout=WAIT) == (1, "two")
    assert await c.call("whoami", timeout=WAIT) == ("ann", "websocket")
    assert await c.call("nope", (1, [2]), timeout=WAIT) == "caught nope [1, [2]]"
    assert await c.call("x", namespace="/other", timeout=WAIT) == "/other x"
    sid = c.get_sid()
    env = sio.get_environ(sid)
    assert env is not None and env["HTTP_X_USER"] == "ann"
    assert sorted(p for p, _ in sio.manager.get_participants("/", None)) == [sid]
    await sio.enter_room(sid, "room")
    assert sorted(sio.rooms(sid)) == sorted([sid, "room"])
    assert [p for p, _ in sio.manager.get_participants("/", "room")] == [sid]
    assert sorted(sio.manager.get_rooms(sid, "/")) == sorted([sid, "room"])
    await sio.disconnect(sid)
    assert seen[-1] == ("disconnect", sio.reason.SERVER_DISCONNECT)
    with pytest.raises(KeyError):
        await sio.get_session(sid)
    await sio.shutdown()


async def test_emit_data_shapes_callbacks_and_call(free_port: int, clients: Any) -> None:
    sio = await start(free_port)
    c = clients()
    got: asyncio.Queue[Any] = asyncio.Queue()
    c.on("shape", lambda *a: got.put_nowait(a))
    c.on("question", lambda *a: ("answer", len(a)))

    async def never(*a: Any) -> None:
        await asyncio.sleep(5)

    c.on("slow", never)
    await client_connect(c, free_port)
    sid = c.get_sid()
    await sio.emit("shape", (1, 2), to=sid)
    await sio.emit("shape", [1, 2], to=sid)
    await sio.emit("shape", to=sid)
    await sio.emit("shape", {"a": b"\x01"}, room=sid)
    assert [await asyncio.wait_for(got.get(), WAIT) for _ in range(4)] == [(1, 2), ([1, 2],), (), ({"a": b"\x01"},)]
    assert await sio.call("question", (1, 2, 3), to=sid, timeout=WAIT) == ("answer", 3)
    answered = future()
    await sio.emit("question", "x", to=sid, callback=lambda *a: answered.set_result(a))
    assert await asyncio.wait_for(answered, WAIT) == ("answer", 1)
    with pytest.raises(socketio.exceptions.TimeoutError):
        await sio.call("slow", to=sid, timeout=0.3)
    with pytest.raises(ValueError):
        await sio.call("x")
    await sio.emit("shape", "skipped", skip_sid=sid)
    await sio.send("hello", to=sid)
    await asyncio.sleep(0.2)
    assert got.empty()
    await sio.shutdown()


async def test_async_handlers_false_runs_one_client_in_order(free_port: int, clients: Any) -> None:
    sio = await start(free_port, async_handlers=False)
    order: list[int] = []

    @sio.on("step")
    async def step(sid: str, n: int) -> None:
        await asyncio.sleep(0.05 if n == 0 else 0)
        order.append(n)

    c = clients()
    await client_connect(c, free_port)
    for n in range(4):
        await c.emit("step", n)
    for _ in range(200):
        if len(order) == 4:
            break
        await asyncio.sleep(0.01)
    assert order == [0, 1, 2, 3]
    with pytest.raises(RuntimeError):
        await sio.call("x", to=c.get_sid())
    await sio.shutdown()


async def test_namespaces_class_based_and_refused(free_port: int, clients: Any) -> None:
    sio = await start(free_port)
    log: list[Any] = []

    class Chat(socketio.AsyncNamespace):
        def on_connect(self, sid: str, environ: dict[str, Any]) -> None:
            log.append("connect")

        async def on_hello(self, sid: str, data: Any) -> Any:
            await self.enter_room(sid, "chatters")
            await self.emit("echo", data, room="chatters")
            async with self.session(sid) as s:
                s["n"] = s.get("n", 0) + 1
            return (await self.get_session(sid))["n"], self.rooms(sid) != []

        def on_disconnect(self, sid: str) -> None:
            log.append("disconnect")

    sio.register_namespace(Chat("/chat"))
    with pytest.raises(ValueError):
        sio.register_namespace(object())  # type: ignore[arg-type]
    c = clients()
    echoed = future()
    c.on("echo", lambda d: echoed.set_result(d), namespace="/chat")
    await client_connect(c, free_port, namespaces=["/chat"])
    assert await c.call("hello", "hi", namespace="/chat", timeout=WAIT) == (1, True)
    assert await asyncio.wait_for(echoed, WAIT) == "hi"
    await c.disconnect()
    for _ in range(100):
        if "disconnect" in log:
            break
        await asyncio.sleep(0.01)
    assert log == ["connect", "disconnect"]
    # a namespace nobody declared is refused
    other = clients()
    with pytest.raises(pysio.exceptions.ConnectionError):
        await client_connect(other, free_port, namespaces=["/nowhere"])
    await sio.shutdown()


async def test_always_connect_refusal_arrives_as_disconnect(free_port: int, clients: Any) -> None:
    sio = await start(free_port, always_connect=True)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any]) -> bool:
        await sio.emit("early", "before the handler returns", to=sid)
        return False

    c = clients()
    early = future()
    gone = future()
    c.on("early", lambda d: early.set_result(d))
    c.on("disconnect", lambda *a: gone.done() or gone.set_result(a))
    await client_connect(c, free_port)
    assert await asyncio.wait_for(early, WAIT) == "before the handler returns"
    await asyncio.wait_for(gone, WAIT)
    await sio.shutdown()


async def test_same_origin_check_by_default(free_port: int) -> None:
    sio = await start(free_port)
    url = f"http://127.0.0.1:{free_port}/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Origin": "http://evil.example"}) as resp:
            assert resp.status in (400, 403)
        async with http.get(url, headers={"Origin": f"http://127.0.0.1:{free_port}"}) as resp:
            assert resp.status == 200
        async with http.get(url) as resp:
            assert resp.status == 200
    await sio.shutdown()
    star = socketio.AsyncServer(cors_allowed_origins="*")
    await star.fastsio_server.listen(free_port, host="127.0.0.1")
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Origin": "http://any.example"}) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == "http://any.example"
    await star.shutdown()


@pytest.mark.parametrize("how", ["client", "server"])
async def test_disconnect_reasons_match_python_socketio(how: str, free_port: int, clients: Any) -> None:
    from compat_support import serve

    got: dict[str, list[str]] = {}
    for name, make in (("python-socketio", pysio.AsyncServer), ("fastsio", socketio.AsyncServer)):
        sio = make(async_mode="asgi")
        reasons: list[str] = []
        sio.on("disconnect", lambda sid, reason, reasons=reasons: reasons.append(reason))
        app = pysio.ASGIApp(sio) if name == "python-socketio" else socketio.ASGIApp(sio)
        async with serve("uvicorn", app, sio, free_port):
            c = clients()
            await client_connect(c, free_port)
            if how == "client":
                await c.disconnect()
            else:
                await sio.disconnect(c.get_sid())
            for _ in range(200):
                if reasons:
                    break
                await asyncio.sleep(0.01)
        got[name] = reasons
    assert got["fastsio"] == got["python-socketio"] and len(got["fastsio"]) == 1, got
    assert got["fastsio"][0] in vars(socketio.AsyncServer.reason).values()


async def test_logger_option(caplog: Any) -> None:
    mine = logging.getLogger("my.app")
    sio = socketio.AsyncServer(logger=mine)
    assert sio.logger is mine


async def test_asgi_app_socketio_path_and_lifespan_hooks(free_port: int, clients: Any) -> None:
    from compat_support import serve

    calls: list[str] = []

    async def started() -> None:
        calls.append("startup")

    sio = socketio.AsyncServer(async_mode="asgi")
    app = socketio.ASGIApp(sio, socketio_path="/ws/", on_startup=started, on_shutdown=lambda: calls.append("down"))
    assert app.engineio_server is sio and app.other_asgi_app is None and sio.fastsio_server.path() == "/ws"
    async with serve("uvicorn", app, sio, free_port):
        assert calls == ["startup"]
        c = clients()
        await c.connect(f"http://127.0.0.1:{free_port}", socketio_path="ws", transports=["websocket"],
                        wait_timeout=WAIT)
        assert c.connected
    assert calls == ["startup", "down"]
    # the routing rules are python-socketio's: same answers as python-engineio's own function
    from engineio.static_files import get_static_file as reference

    from fastsio.compat.asgi import get_static_file

    tables: list[Any] = [
        {"/": "index.html", "/static": "./public", "/docs/": {"filename": "d/", "content_type": "text/x"}},
        {"/": "index.html", "": "main.html", "/img/": "pics/", "/a/b": {"filename": "f.bin"}},
        {"/static/": "./s/", "": {"filename": "home.txt", "content_type": "text/y"}},
    ]
    paths = ["/", "/index.html", "/static", "/static/", "/static/a/b.js", "/static/../x", "/docs/", "/docs/x.css",
             "/other", "/img/", "/img/cat.png", "/a/b", "/a/b/c", "/a", "", "/static/a/../../etc"]
    for files in tables:
        for path in paths:
            assert get_static_file(path, files) == reference(path, files), (files, path)


async def test_msgpack_serializer_with_python_socketios_msgpack_client(free_port: int) -> None:
    sio = await start(free_port, serializer="msgpack")

    @sio.on("echo")
    async def echo(sid: str, data: Any) -> Any:
        return data

    c = pysio.AsyncClient(serializer="msgpack", reconnection=False)
    try:
        await client_connect(c, free_port)
        value = {"n": 1, "bin": b"\x00\xff", "list": [1.5, None, "é"]}
        assert await c.call("echo", value, timeout=WAIT) == value
    finally:
        await c.disconnect()
        await sio.shutdown()
