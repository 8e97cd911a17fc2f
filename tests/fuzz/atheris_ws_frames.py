"""Long-running coverage-guided fuzzing of the WebSocket frame parser (atheris).

Not collected by pytest (the name does not start with ``test_``). Run with::

    pip install atheris
    python tests/fuzz/atheris_ws_frames.py -max_total_time=600

Each input picks parser options from its first byte, then is fed in chunks
whose sizes come from the input too. The pure and compiled parsers must
agree on every feed() call; any exception other than WebSocketError is a bug.
"""
from __future__ import annotations

import sys
from typing import Any

try:
    import atheris
except ImportError:  # pragma: no cover - optional tool
    atheris = None

if atheris is not None:
    with atheris.instrument_imports():
        from fastsio._pure import ws_frames as pure
        from fastsio._speedups import ws_frames as speedups
        from fastsio.exceptions import WebSocketError


def _run(mod: Any, opts: dict[str, Any], chunks: list[bytes]) -> list[Any]:
    parser = mod.FrameParser(**opts)
    results: list[Any] = []
    for chunk in chunks:
        try:
            results.append(parser.feed(chunk))
        except WebSocketError as exc:
            results.append((exc.code, exc.reason))
            break
    return results


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    flags = fdp.ConsumeIntInRange(0, 255)
    opts = {
        "max_message_size": (0, 10, 200, 1_000_000)[flags & 3],
        "max_fragments": (1, 3, 1000, 1000)[(flags >> 2) & 3],
        "client_side": bool(flags & 16),
        "allow_rsv1": bool(flags & 32),
    }
    chunks = []
    while fdp.remaining_bytes():
        size = fdp.ConsumeIntInRange(0, 64)
        chunks.append(fdp.ConsumeBytes(size))
    assert _run(pure, opts, chunks) == _run(speedups, opts, chunks)
    try:
        pure.parse_close(data[:40])
        close_pure: Any = "ok"
    except WebSocketError as exc:
        close_pure = (exc.code, exc.reason)
    try:
        speedups.parse_close(data[:40])
        close_fast: Any = "ok"
    except WebSocketError as exc:
        close_fast = (exc.code, exc.reason)
    assert close_pure == close_fast


def main() -> None:
    if atheris is None:
        sys.exit("atheris is not installed: pip install atheris")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
