"""Server and Engine options: declared once (fastsio.options), checked at construction, known to mypy."""
from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fastsio
from fastsio import options

ROOT = Path(__file__).resolve().parents[2]
COMPILED = os.environ.get("FASTSIO_NO_EXTENSIONS", "") in ("", "0")


def test_unknown_server_option_names_the_closest() -> None:
    with pytest.raises(TypeError, match=r"'ping_intervall'; did you mean 'ping_interval'\?"):
        fastsio.Server(ping_intervall=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"did you mean 'connection_state_recovery'"):
        fastsio.Server(connection_state_recover=True)  # type: ignore[call-arg]


def test_unknown_engine_option_names_the_closest_or_lists_them() -> None:
    with pytest.raises(TypeError, match=r"did you mean 'max_http_buffer_size'"):
        fastsio.Engine(max_http_buffer=10)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"valid options: add_trailing_slash, .*upgrade_timeout"):
        fastsio.Engine(zzz=1)  # type: ignore[call-arg]
    # socket.io options are not Engine options
    with pytest.raises(TypeError, match="serve_client"):
        fastsio.Engine(serve_client=False)  # type: ignore[call-arg]


def test_defaults_reach_the_objects() -> None:
    engine = fastsio.Engine()
    d = options.defaults(options.EngineOptions)
    assert engine.ping_interval == d["ping_interval"] == 25
    assert engine.ping_timeout == 20 and engine.max_http_buffer_size == 1_000_000
    assert engine.path == "/engine.io/"
    io = fastsio.Server(ping_timeout=7)
    assert io.path() == "/socket.io" and io.connect_timeout() == 45 and io.serve_client() is True
    assert io.engine.ping_timeout == 7 and io.engine.ping_interval == 25


def test_every_engine_option_is_accepted_by_server_and_engine() -> None:
    names = options.engine_option_names()
    assert "path" not in names
    assert names | {"path"} == set(options.defaults(options.EngineOptions))
    assert names < set(options.defaults(options.ServerOptions))
    for name, default in options.defaults(options.EngineTuning).items():
        fastsio.Engine(**{name: default})
        fastsio.Server(**{name: default})


def test_signatures_are_typed_with_unpack() -> None:
    for cls in (fastsio.Server, fastsio.Engine):
        params = inspect.signature(cls.__init__).parameters
        kw = [p for p in params.values() if p.kind is p.VAR_KEYWORD]
        assert len(kw) == 1 and "Unpack" in str(kw[0].annotation)


@pytest.mark.skipif(not COMPILED, reason="run once, in the compiled pass")
def test_mypy_knows_every_option(tmp_path: Path) -> None:
    src = tmp_path / "uses_options.py"
    src.write_text(textwrap.dedent("""
        import fastsio
        ok = fastsio.Server(ping_interval=5, cors={"origin": "*"}, connect_timeout=None, path="/x/")
        ok2 = fastsio.Engine(transports=["websocket"], max_buffered_bytes=10)
        bad1 = fastsio.Server(ping_intervall=5)
        bad2 = fastsio.Server(ping_interval="5")
        bad3 = fastsio.Engine(serve_client=True)
    """))
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(src)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = result.stdout
    lines = {int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line}
    assert lines == {5, 6, 7}, out
    assert '"ping_intervall"' in out and '"serve_client"' in out
