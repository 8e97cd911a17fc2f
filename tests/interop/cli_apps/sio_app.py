"""A small app for tests/interop/test_cli.py: `python -m fastsio serve sio_app:io`."""
import fastsio

io = fastsio.Server(cors={"origin": "*"})
not_a_server = 42


@io.on("connection")
def on_connection(socket: fastsio.Socket) -> None:
    socket.on("echo", lambda *args: list(args))
    socket.on("impl", lambda: fastsio.IMPLEMENTATION)
    socket.on("loop", lambda: type(__import__("asyncio").get_running_loop()).__module__)
