"""Long-running coverage-guided fuzzing of the msgpack packet decoder (atheris).

Not collected by pytest (the name does not start with ``test_``). Run with::

    pip install atheris
    python tests/fuzz/atheris_msgpack_codec.py -max_total_time=300 /tmp/corpus_msgpack

The first byte of an input picks the decoder limits (``max_attachments`` and
``max_depth``, small ones included); the rest is one binary frame, fed to one
compiled and one pure ``Decoder``. Checks:

* only ProtocolError (or a subclass) escapes ``feed``;
* both twins return the same thing (an equal packet with the same field
  types, or the same exception type and message);
* every decoded packet, re-encoded by the compiled ``encode`` (the pure one
  must write the same bytes), decodes back to an equal packet.

Coverage feedback comes from the pure twin; the compiled decoder sees the same frames.
"""
from __future__ import annotations

import math
import sys
from typing import Any

try:
    import atheris
except ImportError:  # pragma: no cover - optional tool
    atheris = None

if atheris is not None:
    with atheris.instrument_imports():
        from fastsio._pure import msgpack_codec as pure
        from fastsio._speedups import msgpack_codec as speedups
        from fastsio.exceptions import ProtocolError


def _shape(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return (type(value), value)


def _outcome(decoder: Any, frame: bytes) -> Any:
    try:
        p = decoder.feed(frame)
    except ProtocolError as exc:
        return ("err", type(exc), str(exc))
    return ("ok", p.type, p.nsp, p.id, _shape(p.data))


def test_one_input(data: bytes) -> None:
    if not data:
        return
    limits = data[0]
    max_attachments = limits & 0x0F
    max_depth = (limits >> 4) * 8
    frame = data[1:]
    a = _outcome(pure.Decoder(max_attachments, max_depth), frame)
    b = _outcome(speedups.Decoder(max_attachments, max_depth), frame)
    if a != b:
        raise AssertionError(f"twins disagree on {frame!r}: {a} != {b}")
    if a[0] == "ok" and a[2].startswith("/"):  # encode refuses a namespace without "/"
        packet = speedups.Decoder(1000, 1000).feed(frame)
        encoded = speedups.encode(packet.type, packet.nsp, packet.data, packet.id)
        if encoded != pure.encode(packet.type, packet.nsp, packet.data, packet.id):
            raise AssertionError(f"twins encode differently: {packet!r}")
        again = speedups.Decoder(1000, 1000).feed(encoded[0])
        if (again.type, again.nsp, again.id) != (packet.type, packet.nsp, packet.id) or _shape(again.data) != _shape(packet.data):
            raise AssertionError(f"round trip changed {packet!r} into {again!r}")


def main() -> None:
    if atheris is None:
        sys.exit("atheris is not installed: pip install atheris")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
