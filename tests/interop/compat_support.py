"""Serving a fastsio.compat app under uvicorn or under fastsio's own server, for the compat tests."""
from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import itertools
from pathlib import Path
from types import ModuleType
from typing import Any, AsyncIterator

import aiohttp

APPS = Path(__file__).resolve().parents[1] / "compat_apps"
_n = itertools.count()
MODES = ["uvicorn", "native"]


def load_app(name: str) -> ModuleType:
    """A fresh copy of tests/compat_apps/NAME.py (each test gets its own server objects)."""
    spec = importlib.util.spec_from_file_location(f"compat_app_{name}_{next(_n)}", APPS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def native_hosts_asgi(io: Any) -> bool:
    """Whether fastsio's own server can host the app's other routes (io.listen(app=...))."""
    return "app" in inspect.signature(io.listen).parameters


@contextlib.asynccontextmanager
async def serve(mode: str, asgi_app: Any, sio: Any, port: int) -> AsyncIterator[None]:
    """Serve ``asgi_app`` (a fastsio.compat.ASGIApp around ``sio``) on 127.0.0.1:``port``."""
    if mode == "uvicorn":
        import uvicorn

        config = uvicorn.Config(asgi_app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=5)
        server = uvicorn.Server(config)
        task = asyncio.ensure_future(server.serve())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not server.started:
            if task.done() or loop.time() > deadline:
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.02)
        try:
            yield
        finally:
            # clients first (a pending long poll would hold uvicorn's graceful shutdown)
            await sio.shutdown()
            server.should_exit = True
            await asyncio.wait_for(task, 15)
    else:
        io = sio.fastsio_server
        if native_hosts_asgi(io):
            await io.listen(port, host="127.0.0.1", app=asgi_app)
        else:
            await io.listen(port, host="127.0.0.1")
        try:
            yield
        finally:
            await sio.shutdown()


async def http_get(port: int, path: str) -> tuple[int, str, str]:
    """(status, content type, body) of GET path."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}{path}") as resp:
            return resp.status, resp.headers.get("content-type", ""), await resp.text()


def cancel_tasks_named(name: str) -> None:
    """Cancel the app's endless background tasks (by coroutine name)."""
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        if getattr(coro, "__name__", "") == name:
            task.cancel()
