"""FastAPI routes and static files beside Socket.IO on one ASGI app (the shape of fastapi-fiddle.py)."""
import os

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

import fastsio.compat as socketio

HERE = os.path.dirname(os.path.abspath(__file__))
#: (sid, auth) of every connection, sids of every disconnection
connected = []
disconnected = []

app = FastAPI()
app.mount("/static", StaticFiles(directory=os.path.join(HERE, "static")), name="static")

sio = socketio.AsyncServer(async_mode="asgi")
combined_asgi_app = socketio.ASGIApp(sio, app)


@app.get("/")
async def index():
    return FileResponse(os.path.join(HERE, "static", "fiddle.html"))


@app.get("/hello")
async def hello():
    return {"message": "Hello, World!"}


@sio.event
async def connect(sid, environ, auth):
    connected.append((sid, auth))
    await sio.emit("hello", (1, 2, {"hello": "you"}), to=sid)


@sio.event
def disconnect(sid):
    disconnected.append(sid)
