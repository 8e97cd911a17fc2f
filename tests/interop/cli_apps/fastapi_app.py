"""A FastAPI app and a fastsio.Server on one port (tests/interop/test_asgi_host.py, test_cli.py).

``create()`` makes a fresh pair; the module-level ``io`` (the Socket.IO
server), ``api`` (the FastAPI app) and ``both`` (an ``ASGIApp`` wrapping the
two) are what the command line serves; ``EVENTS`` records the lifespan.
"""
from __future__ import annotations

import asyncio
import hashlib
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

import fastsio

def create() -> tuple[fastsio.Server, FastAPI, list[str]]:
    """A new Socket.IO server, FastAPI app and lifespan record."""
    EVENTS: list[str] = []

    io = fastsio.Server(cors={"origin": "*"})


    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        socket.join("news")
        socket.on("echo", lambda *args: list(args))


    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        EVENTS.append("startup")
        print("lifespan startup", flush=True)
        yield {"greeting": "started"}
        EVENTS.append("shutdown")
        print("lifespan shutdown", flush=True)


    api = FastAPI(lifespan=lifespan)


    @api.get("/hello")
    async def hello(request: Request) -> dict[str, Any]:
        return {"hello": "world", "state": request.state.greeting}


    @api.get("/scope/{rest:path}")
    async def scope(request: Request) -> dict[str, Any]:
        s = request.scope
        return {
            "type": s["type"], "asgi": s["asgi"], "http_version": s["http_version"], "method": s["method"],
            "scheme": s["scheme"], "path": s["path"], "raw_path": s["raw_path"].decode("latin-1"),
            "query_string": s["query_string"].decode("latin-1"), "root_path": s["root_path"],
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in s["headers"]],
            "bytes_headers": all(isinstance(k, bytes) and isinstance(v, bytes) and k == k.lower()
                                 for k, v in s["headers"]),
            "client": list(s["client"]), "server": list(s["server"]),
        }


    @api.post("/upload")
    async def upload(request: Request) -> dict[str, Any]:
        digest = hashlib.sha256()
        size = chunks = 0
        async for chunk in request.stream():
            if chunk:
                chunks += 1
                size += len(chunk)
                digest.update(chunk)
        return {"size": size, "chunks": chunks, "sha256": digest.hexdigest()}


    @api.get("/stream")
    async def stream(n: int = 5, size: int = 10, delay: float = 0.0) -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for i in range(n):
                yield bytes([65 + i % 26]) * size
                if delay:
                    await asyncio.sleep(delay)

        return StreamingResponse(parts(), media_type="application/octet-stream")


    @api.get("/emit")
    async def emit(msg: str) -> dict[str, Any]:
        # an HTTP route reaching the Socket.IO clients on the same port
        io.to("news").emit("news", msg)
        return {"sent": msg, "clients": len(io.sockets.sockets)}


    @api.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol="chat" if "chat" in websocket.scope["subprotocols"] else None)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") == "close":
                    await websocket.close(code=4001, reason="asked")
                    return
                if message.get("text") is not None:
                    await websocket.send_text("echo:" + message["text"])
                else:
                    await websocket.send_bytes(b"echo:" + message["bytes"])
        except WebSocketDisconnect:
            return


    return io, api, EVENTS


io, api, EVENTS = create()
both = fastsio.ASGIApp(io, other_app=api)
