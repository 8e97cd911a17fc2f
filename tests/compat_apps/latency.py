"""A ping/pong round trip and static files with a directory (the shape of latency.py)."""
import os

import fastsio.compat as socketio

HERE = os.path.dirname(os.path.abspath(__file__))

sio = socketio.AsyncServer(async_mode="asgi")
app = socketio.ASGIApp(sio, static_files={
    "/": os.path.join(HERE, "static", "latency.html"),
    "/static": os.path.join(HERE, "static"),
})


@sio.event
async def ping_from_client(sid):
    await sio.emit("pong_from_server", room=sid)
