"""The nginx example of docs/scaling.md, run for real.

The ```nginx block of the page is wrapped into a complete nginx.conf (pid,
logs and temp paths in a private directory, a free port, the two fastsio
servers of the test as the upstream) and run as its own nginx process. Two
fastsio servers joined by a real redis-server sit behind it; npm
socket.io-client clients (tests/peers/nginx_clients.mjs) connect through it
with long-polling only and with the upgrade to WebSocket. The clients come
from distinct loopback addresses (127.0.N.1) so that ``ip_hash`` spreads them
over both servers. Checked: every client connects and stays on its server
(polling sessions survive many requests: the stickiness works), a broadcast
made on one server reaches the clients of both, and the upgrade passes nginx.

A missing nginx fails the test: `bash ci/test.sh` installs Debian's nginx.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest

from fastsio.adapters.redis import RedisAdapter

DOC = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"
#: one client per address; ip_hash keys on the first three octets of IPv4
CLIENT_ADDRS = ",".join(f"127.0.{n}.1" for n in range(1, 7))


def doc_nginx_block() -> str:
    """The one ```nginx block of docs/scaling.md."""
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, f"expected one nginx block in {DOC}, found {len(blocks)}"
    return str(blocks[0])


def nginx_conf(block: str, tmp: Path, port: int, upstreams: list[int]) -> str:
    """A complete nginx.conf around the doc's block, everything it writes kept in ``tmp``."""
    servers = re.findall(r"^[ \t]*server 127\.0\.0\.1:\d+;.*\n", block, re.M)
    assert len(servers) >= 2, f"the doc's upstream lists no servers:\n{block}"
    indent = re.match(r"[ \t]*", servers[0]).group(0)  # type: ignore[union-attr]
    ours = "".join(f"{indent}server 127.0.0.1:{p};\n" for p in upstreams)
    block = block.replace(servers[0], ours, 1)
    for extra in servers[1:]:
        block = block.replace(extra, "", 1)
    block, n = re.subn(r"\blisten 80;", f"listen 127.0.0.1:{port};", block)
    assert n == 1, f"the doc's server block has no `listen 80;`:\n{block}"
    inside_http = "".join(
        f"  {d} {tmp / name};\n" for d, name in (
            ("access_log", "access.log"), ("client_body_temp_path", "client_body"),
            ("proxy_temp_path", "proxy"), ("fastcgi_temp_path", "fastcgi"),
            ("uwsgi_temp_path", "uwsgi"), ("scgi_temp_path", "scgi"),
        )
    )
    block, n = re.subn(r"^http \{\n", "http {\n" + inside_http, block, flags=re.M)
    assert n == 1, f"the doc's block does not start with `http {{`:\n{block}"
    head = (
        "daemon off;\nworker_processes 1;\n"
        f"pid {tmp / 'nginx.pid'};\nerror_log {tmp / 'error.log'} info;\n"
        "events { worker_connections 256; }\n"
    )
    return head + block


@pytest.fixture
async def nginx() -> AsyncIterator[Callable[[int, list[int]], Any]]:
    """``await nginx(port, [upstream ports])``: the doc's nginx serving on 127.0.0.1:port."""
    binary = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
    if binary is None:
        pytest.fail("nginx is not installed: this test runs docs/scaling.md's nginx example "
                    "(run `bash ci/test.sh`, which installs Debian's nginx, or `apt-get install -y nginx`)")
    # nginx's workers may run as another user: a private dir they can traverse
    tmp = Path(tempfile.mkdtemp(prefix="fastsio-nginx-"))
    tmp.chmod(0o755)
    procs: list[subprocess.Popen[bytes]] = []

    async def start(port: int, upstreams: list[int]) -> subprocess.Popen[bytes]:
        (tmp / "nginx.conf").write_text(nginx_conf(doc_nginx_block(), tmp, port, upstreams))
        proc = subprocess.Popen(
            [binary, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while True:
            if proc.poll() is not None:
                pytest.fail(f"nginx exited with {proc.returncode}:\n{_logs(proc, tmp)}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if loop.time() > deadline:
                    pytest.fail(f"nginx did not listen on {port} within 5 s:\n{_logs(proc, tmp)}")
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)     # graceful shutdown
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
    shutil.rmtree(tmp, ignore_errors=True)


def _logs(proc: subprocess.Popen[bytes], tmp: Path) -> str:
    out = b""
    if proc.poll() is not None and proc.stdout is not None:
        out = proc.stdout.read()
    log = tmp / "error.log"
    return out.decode(errors="replace") + (log.read_text(errors="replace")[-4000:] if log.exists() else "")


def _port_other_than(taken: list[int]) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in taken:
            return port


def test_the_doc_block_becomes_a_full_config() -> None:
    conf = nginx_conf(doc_nginx_block(), Path("/x"), 8080, [4001, 4002])
    assert "ip_hash;" in conf and "listen 127.0.0.1:8080;" in conf
    assert re.findall(r"server 127\.0\.0\.1:(\d+);", conf) == ["4001", "4002"]
    assert 'proxy_set_header Upgrade $http_upgrade;' in conf and "daemon off;" in conf


@pytest.mark.parametrize("mode", ["polling", "upgrade"])
async def test_docs_nginx_sticky_sessions_in_front_of_two_servers(
    mode: str, redis_server: Any, sio_server: Any, nginx: Any, run_node: Any,
) -> None:
    upstreams = []
    for name in ("A", "B"):
        io, port = await sio_server(adapter=RedisAdapter.from_url(redis_server.url))
        upstreams.append(port)

        def on_connection(client: Any, io: Any = io, name: str = name) -> None:
            def on_broadcast(text: str) -> str:
                io.emit("news", {"text": text, "from": name})
                return name

            client.on("whoami", lambda: name)
            client.on("broadcast", on_broadcast)

        io.on("connection", on_connection)

    nginx_port = _port_other_than(upstreams)   # sio_server took free_port for server A
    await nginx(nginx_port, upstreams)

    run = (await run_node("nginx_clients.mjs", f"port={nginx_port}", f"mode={mode}",
                          f"addrs={CLIENT_ADDRS}", timeout=15)).check()
    first = run.events("client")
    after = run.events("after")
    assert len(first) == len(after) == 6, run.describe()
    # ip_hash spread the client addresses over both servers
    assert {c["server"] for c in first} == {"A", "B"}, run.describe()
    want = "websocket" if mode == "upgrade" else "polling"
    for before, later in zip(first, after):
        assert before["transport"] == want and later["transport"] == want, run.describe()
        # sticky: same session on the same server after many polling requests
        assert later["connected"] and later["id"] == before["id"], run.describe()
        assert later["server"] == before["server"], run.describe()
        assert later["errors"] == [] and later["disconnects"] == [], run.describe()
        # the broadcast made on one server reached every client of both, once
        assert later["news"] == [{"text": "hello-all", "from": run.one("broadcast")["from"]}], run.describe()
