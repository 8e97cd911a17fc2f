"""The real Admin UI page against an instrumented fastsio server.

The page is the built UI shipped in the npm package (``@socket.io/admin-ui``
``ui/dist``), served on its own port as admin.socket.io would be, opened in
Debian's headless Chromium through Playwright. The test logs in with basic
auth, reads the server, the connected client (transport, rooms) and an event
from the page, makes the client join a room from the page, and keeps a
screenshot in tests/.work/.
"""
from __future__ import annotations

import asyncio
import shutil
import socket as _socket
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import socketio
from aiohttp import web

UI_DIST = Path(__file__).resolve().parents[1] / "peers" / "node_modules" / "@socket.io" / "admin-ui" / "ui" / "dist"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WORK = Path(__file__).resolve().parents[1] / ".work"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed (run `bash ci/test.sh`)")
    return path


def _port() -> int:
    with _socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def _serve_ui() -> tuple[web.AppRunner, str]:
    if not (UI_DIST / "index.html").is_file():
        pytest.fail(f"{UI_DIST} is missing (run `bash ci/setup.sh`)")
    app = web.Application()

    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(UI_DIST / "index.html")

    app.router.add_get("/", index)
    app.router.add_static("/", UI_DIST)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def test_admin_ui_page_shows_and_drives_the_server(sio_server: Any, wait_until: Any) -> None:
    from playwright.async_api import async_playwright

    runner, ui_url = await _serve_ui()
    io, port = await sio_server(cors={"origin": [ui_url], "credentials": True})
    io.instrument(auth={"type": "basic", "username": "admin",
                        "password": bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()},
                  server_id="fastsio-under-test", stats_interval=0.5)
    got: list[Any] = []

    @io.on("connection")
    def on_connection(sock: Any) -> None:
        sock.join("lobby")
        sock.on("chat", lambda *a: got.append(a))

    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(f"http://127.0.0.1:{port}", transports=["websocket"])
        sid = client.get_sid("/")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True)
            try:
                page = await browser.new_page()
                await page.goto(ui_url + "/")
                await page.get_by_label("Server URL").fill(f"http://127.0.0.1:{port}")
                await page.get_by_label("Username").fill("admin")
                await page.get_by_label("Password").fill("pw")
                await page.get_by_role("button", name="Connect").click()
                # the servers page lists this server by its id once stats arrive
                await page.goto(ui_url + "/#/servers/")
                await page.get_by_text("fastsio-under-test").first.wait_for(timeout=20000)
                # an event sent after the login appears on the events page
                await client.emit("chat", "hello from python")
                await wait_until(lambda: bool(got), what="chat reached the server")
                await page.goto(ui_url + "/#/events/")
                await page.get_by_text("chat").first.wait_for(timeout=20000)
                # the client, its transport and its rooms
                await page.goto(ui_url + "/#/sockets/")
                await page.get_by_text(sid).first.wait_for(timeout=20000)
                await page.get_by_text("websocket").first.wait_for(timeout=20000)
                await page.goto(ui_url + "/#/rooms/")
                await page.get_by_text("lobby").first.wait_for(timeout=20000)
                # a command from the page: make the client join "vip"
                await page.goto(f"{ui_url}/#/n/%2F/sockets/{sid}")
                room_box = page.get_by_label("Join a room")
                await room_box.fill("vip")
                # the submit button of the join form (an icon, no text)
                await page.locator("button[type=submit].v-size--small").first.click()
                server_socket = io.of("/").sockets[sid]
                await wait_until(lambda: "vip" in server_socket.rooms, timeout=20, what="join from the page")
                await page.get_by_text("vip").first.wait_for(timeout=20000)
                WORK.mkdir(exist_ok=True)
                await page.screenshot(path=str(WORK / "admin-ui-socket.png"), full_page=True)
            finally:
                await browser.close()
    finally:
        await client.disconnect()
        await runner.cleanup()
        await asyncio.sleep(0)
