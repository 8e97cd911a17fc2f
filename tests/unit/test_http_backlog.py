"""The listen backlog holds a reconnect storm while the loop is busy.

Every client of a dead server comes back within milliseconds; the kernel
queues the handshakes until the loop accepts them, up to the backlog. With a
short backlog the rest have their SYNs dropped and retry after 1, 3, 7 s
(the 5,000-client storm of bench section H).
"""
from __future__ import annotations

import asyncio
import resource
import select
import socket
import time

import pytest

from fastsio.http import HttpServer

STORM = 1500


def _somaxconn() -> int:
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return int(f.read())
    except OSError:
        return 0


@pytest.mark.skipif(_somaxconn() < STORM + 10, reason="net.core.somaxconn caps the backlog below the storm")
def test_a_storm_of_connects_is_queued_while_the_loop_does_not_accept() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < STORM + 200:
        pytest.skip("not enough file descriptors for the storm")
    loop = asyncio.new_event_loop()
    http = HttpServer(lambda req: None)
    server = loop.run_until_complete(http.listen(0, "127.0.0.1"))
    port = server.sockets[0].getsockname()[1]
    clients: list[socket.socket] = []
    try:
        # the loop does not run from here on: nothing is accepted, the kernel queues
        for _ in range(STORM):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            clients.append(c)
        poller = select.epoll()
        for c in clients:
            poller.register(c.fileno(), select.EPOLLOUT)
        established: set[int] = set()
        end = time.monotonic() + 0.8  # before the first SYN retransmission (1 s)
        while time.monotonic() < end and len(established) < STORM:
            for fd, ev in poller.poll(0.05):
                if ev & select.EPOLLOUT:
                    established.add(fd)
                    poller.unregister(fd)
        poller.close()
        assert len(established) == STORM, f"{STORM - len(established)} of {STORM} connects not queued"
    finally:
        for c in clients:
            c.close()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
