"""Type checks CI runs: mypy --strict on the package, and stubtest of the compiled modules against their .pyi."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPILED = os.environ.get("FASTSIO_NO_EXTENSIONS", "") in ("", "0")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(not COMPILED, reason="run once, in the compiled pass")
def test_mypy_strict() -> None:
    result = _run("mypy", "--strict", "fastsio")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not COMPILED, reason="stubs describe the compiled modules")
def test_stubtest_speedups() -> None:
    mods = [f"fastsio._speedups.{m}" for m in ("eio_codec", "ws_frames", "sio_codec", "fanout", "msgpack_codec", "http_fast")]
    result = _run("mypy.stubtest", "--mypy-config-file", "pyproject.toml", *mods)
    assert result.returncode == 0, result.stdout + result.stderr
