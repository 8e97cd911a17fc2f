"""The Node side of the Redis cluster tests (tests/peers/node_redis_peer.mjs), driven over TCP.

One node process per test module holds Node socket.io servers with the
official @socket.io/redis-adapter, socket.io-client clients and the
official emitter; tests ask it to act with ``await peer.call(op, **fields)``.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import select
import shutil
import subprocess
from pathlib import Path
from typing import Any, Optional

import pytest

PEERS = Path(__file__).resolve().parent.parent / "peers"


def tag(value: Any) -> Any:
    """Python value -> the driver's JSON form (``{"$bin": hex}`` for binary)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bin": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [tag(v) for v in value]
    if isinstance(value, dict):
        return {k: tag(v) for k, v in value.items()}
    return value


def untag(value: Any) -> Any:
    """The driver's JSON form -> Python values (``bytes`` for ``{"$bin": hex}``)."""
    if isinstance(value, list):
        return [untag(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        return {k: untag(v) for k, v in value.items()}
    return value


class NodePeer:
    def __init__(self, redis_url: str) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not installed (run `bash ci/test.sh`)")
        env = dict(os.environ, NODE_PATH=str(PEERS / "node_modules"))
        env.pop("NODE_OPTIONS", None)
        self.proc = subprocess.Popen(
            [node, str(PEERS / "node_redis_peer.mjs"), f"redis={redis_url}"], cwd=PEERS, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.close()
            pytest.fail(f"node_redis_peer did not start: {self.stderr()}")
        self.port = json.loads(line)["port"]
        self._ids = itertools.count()
        self._conn: Optional[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader_task: Optional[asyncio.Task[None]] = None

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read().decode("utf-8", "replace")[-3000:]

    async def _connection(self) -> asyncio.StreamWriter:
        loop = asyncio.get_running_loop()
        if self._conn is None or self._loop is not loop:
            # each test has its own loop: one control connection per loop
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            self._conn = (reader, writer)
            self._loop = loop
            self._waiting = {}
            self._reader_task = loop.create_task(self._read(reader, self._waiting))
        return self._conn[1]

    async def _read(self, reader: asyncio.StreamReader, waiting: dict[int, asyncio.Future[Any]]) -> None:
        while True:
            line = await reader.readline()
            if not line:
                for fut in waiting.values():
                    if not fut.done():
                        fut.set_exception(ConnectionError("node_redis_peer went away"))
                return
            msg = json.loads(line)
            fut = waiting.pop(msg["id"], None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    async def call(self, op: str, timeout: float = 15, **fields: Any) -> Any:
        """Run ``op`` in the node process; its result, or an AssertionError with the node stack."""
        writer = await self._connection()
        msg_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = fut
        assert "id" not in fields and "op" not in fields
        writer.write((json.dumps({**fields, "id": msg_id, "op": op}) + "\n").encode())
        try:
            answer = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"node_redis_peer: {op} did not answer in {timeout} s") from None
        if not answer["ok"]:
            raise AssertionError(f"node_redis_peer: {op} failed: {answer['error']}")
        return answer["result"]

    async def detach(self) -> None:
        """Drop this loop's control connection (at the end of each test)."""
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None
        if self._reader_task is not None:
            self._reader_task.cancel()
            self._reader_task = None

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(5)
            except Exception:
                self.proc.kill()
                self.proc.wait(5)
