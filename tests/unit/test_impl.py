"""fastsio._impl picks the codec implementation the environment asks for.

Each mode runs in a fresh interpreter, since the choice is made at import.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

MODULES = ("eio_codec", "ws_frames", "sio_codec", "fanout", "msgpack_codec", "http_fast")

PROBE = r"""
import importlib.machinery, json
import fastsio._impl as impl
mods = {}
for name in %r:
    mod = getattr(impl, name)
    mods[name] = {"name": mod.__name__, "file": getattr(mod, "__file__", None) or ""}
print(json.dumps({"implementation": impl.IMPLEMENTATION, "modules": mods,
                  "ext_suffixes": importlib.machinery.EXTENSION_SUFFIXES}))
""" % (MODULES,)


def probe(**env: str) -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FASTSIO_")}
    clean.update(env)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], env=clean, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, f"import failed with {env}:\n{proc.stderr}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_required_extensions_are_compiled() -> None:
    result = probe(FASTSIO_REQUIRE_EXTENSIONS="1")
    assert result["implementation"] == "cython"
    for name in MODULES:
        mod = result["modules"][name]
        assert mod["name"] == f"fastsio._speedups.{name}"
        assert any(mod["file"].endswith(s) for s in result["ext_suffixes"]), mod["file"]


def test_no_extensions_selects_pure_twins() -> None:
    result = probe(FASTSIO_NO_EXTENSIONS="1")
    assert result["implementation"] == "python"
    for name in MODULES:
        mod = result["modules"][name]
        assert mod["name"] == f"fastsio._pure.{name}"
        assert mod["file"].endswith(".py"), mod["file"]


def test_no_extensions_wins_over_require() -> None:
    result = probe(FASTSIO_NO_EXTENSIONS="1", FASTSIO_REQUIRE_EXTENSIONS="1")
    assert result["implementation"] == "python"


def test_default_prefers_compiled_when_built() -> None:
    # The test command builds the extensions, so the default must find them.
    assert probe()["implementation"] == "cython"


def test_this_process_matches_its_environment() -> None:
    import fastsio
    import fastsio._impl as impl

    assert fastsio.IMPLEMENTATION == impl.IMPLEMENTATION
    if os.environ.get("FASTSIO_NO_EXTENSIONS", "") not in ("", "0"):
        assert impl.IMPLEMENTATION == "python"
    elif os.environ.get("FASTSIO_REQUIRE_EXTENSIONS", "") not in ("", "0"):
        assert impl.IMPLEMENTATION == "cython"
    else:
        pytest.skip("neither FASTSIO_NO_EXTENSIONS nor FASTSIO_REQUIRE_EXTENSIONS is set")
