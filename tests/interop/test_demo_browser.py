"""The chat demo in real headless Chromium: two tabs in one room chat through fastsio.

Chromium comes from Debian (`ci/setup.sh` installs it) and is driven with
Playwright's Python API pointed at /usr/bin/chromium. A missing browser fails
the test: it is a real peer the suite is meant to run.
"""
from __future__ import annotations

import shutil
from typing import Any

import pytest

from fastsio.demo import create_server

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed (run `bash ci/setup.sh`)")
    return path


async def test_two_tabs_chat_in_a_room(free_port: int) -> None:
    from playwright.async_api import async_playwright

    io = create_server()
    await io.listen(free_port, host="127.0.0.1")
    url = f"http://127.0.0.1:{free_port}/"
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True)
            try:
                alice = await browser.new_page()
                bob = await browser.new_page()
                await alice.goto(url + "?name=alice")
                await bob.goto(url + "?name=bob")
                for page in (alice, bob):
                    await page.wait_for_function(
                        "document.getElementById('status').textContent.startsWith('connected')", timeout=15000)
                    await page.wait_for_function(
                        "document.getElementById('log').textContent.includes('you are in #lobby')", timeout=15000)
                await alice.fill("#text", "hello from alice")
                await alice.press("#text", "Enter")
                await bob.wait_for_function(
                    "document.getElementById('log').textContent.includes('alice: hello from alice')", timeout=15000)
                await alice.wait_for_function(
                    "document.getElementById('log').textContent.includes('alice: hello from alice')", timeout=15000)
                presence: Any = await bob.text_content("#presence")
                assert presence == "2 in #lobby"
                # bob moves to another room: alice's next message does not reach him
                await bob.select_option("#room", "python")
                await bob.wait_for_function(
                    "document.getElementById('log').textContent.includes('you are in #python')", timeout=15000)
                await alice.fill("#text", "only lobby")
                await alice.press("#text", "Enter")
                await alice.wait_for_function(
                    "document.getElementById('log').textContent.includes('alice: only lobby')", timeout=15000)
                assert "only lobby" not in (await bob.text_content("#log") or "")
                await alice.screenshot(path=str(_shot_dir() / "demo-alice.png"))
            finally:
                await browser.close()
    finally:
        await io.close()


def _shot_dir() -> Any:
    from pathlib import Path

    d = Path(__file__).resolve().parent.parent / ".work"
    d.mkdir(exist_ok=True)
    return d
