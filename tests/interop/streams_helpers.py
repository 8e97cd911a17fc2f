"""Long-running Node drivers for the Redis Streams adapter tests, driven by JSON lines on stdin."""
from __future__ import annotations

import asyncio
import json
import os
from typing import Any, Optional

import shutil
from pathlib import Path

PEERS = Path(__file__).resolve().parent.parent / "peers"
NODE_MODULES = PEERS / "node_modules"


def _node_binary() -> str:
    node = shutil.which("node")
    assert node is not None, "node is not installed: run `bash ci/test.sh`"
    return node


class NodeProc:
    """A node driver that keeps running: ``await start()``, ``await cmd(name, **fields)``, ``await stop()``.

    Every stdout line is a JSON object; ``result`` lines answer commands by
    id, the others are kept in ``lines``.
    """

    def __init__(self, script: str, *args: Any) -> None:
        self.script = script
        self.args = [str(a) for a in args]
        self.lines: list[dict[str, Any]] = []
        self.proc: Optional[asyncio.subprocess.Process] = None
        self._n = 0
        self._waiters: dict[int, "asyncio.Future[dict[str, Any]]"] = {}
        self._reader: Optional["asyncio.Task[None]"] = None
        self._events: dict[str, "asyncio.Future[dict[str, Any]]"] = {}
        self.stderr = b""

    async def start(self, ready: str = "ready", timeout: float = 30) -> dict[str, Any]:
        env = dict(os.environ)
        env.pop("NODE_OPTIONS", None)
        env["NODE_PATH"] = str(NODE_MODULES)
        self.proc = await asyncio.create_subprocess_exec(
            _node_binary(), str(PEERS / self.script), *self.args, cwd=str(PEERS), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        self._reader = asyncio.ensure_future(self._read())
        return await self.wait_event(ready, timeout)

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if line.get("event") == "result" and line.get("id") in self._waiters:
                fut = self._waiters.pop(line["id"])
                if not fut.done():
                    fut.set_result(line)
                continue
            self.lines.append(line)
            fut2 = self._events.pop(line.get("event"), None)
            if fut2 is not None and not fut2.done():
                fut2.set_result(line)
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(RuntimeError(f"{self.script} exited: {await self._stderr()}"))
        for fut in self._events.values():
            if not fut.done():
                fut.set_exception(RuntimeError(f"{self.script} exited: {await self._stderr()}"))

    async def _stderr(self) -> str:
        if self.proc is not None and self.proc.stderr is not None and not self.stderr:
            try:
                self.stderr = await asyncio.wait_for(self.proc.stderr.read(), 2)
            except asyncio.TimeoutError:
                pass
        return self.stderr.decode("utf-8", "replace")[-3000:]

    async def wait_event(self, name: str, timeout: float = 30) -> dict[str, Any]:
        for line in self.lines:
            if line.get("event") == name:
                return line
        fut = self._events.get(name)
        if fut is None:
            fut = self._events[name] = asyncio.get_running_loop().create_future()
        return await asyncio.wait_for(asyncio.shield(fut), timeout)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]

    async def cmd(self, name: str, timeout: float = 30, **fields: Any) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self._n += 1
        fut: "asyncio.Future[dict[str, Any]]" = asyncio.get_running_loop().create_future()
        self._waiters[self._n] = fut
        self.proc.stdin.write((json.dumps({"id": self._n, "cmd": name, **fields}) + "\n").encode())
        await self.proc.stdin.drain()
        res = await asyncio.wait_for(fut, timeout)
        assert "error" not in res, res
        return res

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            except Exception:
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
