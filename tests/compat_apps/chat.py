"""Rooms, broadcasts, a background task and a server-side disconnect (the shape of app.py)."""
import os

import fastsio.compat as socketio

HERE = os.path.dirname(os.path.abspath(__file__))
#: seconds between the background task's server-generated events
INTERVAL = 10.0
#: sids whose disconnect handler ran
disconnected = []

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=None)
app = socketio.ASGIApp(sio, static_files={"/": os.path.join(HERE, "static", "chat.html")})
started = False


async def ticker():
    count = 0
    while True:
        await sio.sleep(INTERVAL)
        count += 1
        await sio.emit("my_response", {"data": "Server generated event", "count": count})


@sio.on("my_event")
async def on_my_event(sid, message):
    await sio.emit("my_response", {"data": message["data"]}, room=sid)


@sio.on("my_broadcast_event")
async def on_broadcast(sid, message):
    await sio.emit("my_response", {"data": message["data"]})


@sio.on("join")
async def on_join(sid, message):
    await sio.enter_room(sid, message["room"])
    await sio.emit("my_response", {"data": "Entered room: " + message["room"]}, room=sid)


@sio.on("leave")
async def on_leave(sid, message):
    await sio.leave_room(sid, message["room"])
    await sio.emit("my_response", {"data": "Left room: " + message["room"]}, room=sid)


@sio.on("close room")
async def on_close_room(sid, message):
    await sio.emit("my_response", {"data": "Room " + message["room"] + " is closing."}, room=message["room"])
    await sio.close_room(message["room"])


@sio.on("my_room_event")
async def on_room_event(sid, message):
    await sio.emit("my_response", {"data": message["data"]}, room=message["room"])


@sio.on("disconnect request")
async def on_disconnect_request(sid):
    await sio.disconnect(sid)


@sio.on("connect")
async def on_connect(sid, environ):
    global started
    if not started:
        sio.start_background_task(ticker)
        started = True
    await sio.emit("my_response", {"data": "Connected", "count": 0}, room=sid)


@sio.on("disconnect")
def on_disconnect(sid):
    disconnected.append(sid)
