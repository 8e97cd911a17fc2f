"""Long-running coverage-guided fuzzing of the Socket.IO packet decoder (atheris).

Not collected by pytest (the name does not start with ``test_``). Run with::

    pip install atheris
    python tests/fuzz/atheris_sio_codec.py -max_total_time=300 /tmp/corpus_sio

The first byte of an input picks the decoder limits (``max_attachments`` and
``max_depth``, small ones included); the rest is split on byte 0xFF into
frames. A frame starting with 0xFE is a binary attachment (the bytes after
it, as bytes, bytearray or memoryview in turn); any other frame is a text
packet (UTF-8, lone surrogates let through). The frames are fed in order to
one compiled and one pure ``Decoder``, going on after errors. Checks:

* only ProtocolError (or a subclass) escapes ``feed``;
* both twins return the same thing on every ``feed`` (None, an equal packet
  with the same field types, or the same exception type and message), and
  agree on ``pending`` after it;
* every complete packet, re-encoded by the compiled ``encode`` (the pure one
  must write the same frames), decodes back to an equal packet.

Coverage feedback comes from the pure twin (the Python code is instrumented,
the compiled module is not); the compiled decoder sees the same frames.
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
        from fastsio._pure import sio_codec as pure
        from fastsio._speedups import sio_codec as speedups
        from fastsio.exceptions import ProtocolError

MAX_ATTACHMENTS = (10, 0, 1, 3)
MAX_DEPTH = (100, 0, 1, 3)
BUFFER_TYPES = (bytes, bytearray, memoryview)


def _typed(value: Any) -> Any:
    """The value with the type of every leaf and container, for exact comparison."""
    if isinstance(value, list):
        return (list, [_typed(v) for v in value])
    if isinstance(value, dict):
        return (dict, [(k, _typed(v)) for k, v in value.items()])
    return (type(value), value)


def _packet(p: Any) -> Any:
    return (type(p.type), p.type, p.nsp, _typed(p.data), type(p.id), p.id)


def _feed(decoder: Any, frame: Any) -> tuple[tuple[Any, ...], Any]:
    """(comparable outcome, packet or None); other exceptions than ProtocolError escape."""
    try:
        p = decoder.feed(frame)
    except ProtocolError as exc:
        return ("err", type(exc), str(exc)), None
    if p is None:
        return ("none",), None
    return ("packet", _packet(p)), p


def _frames(body: bytes) -> list[Any]:
    frames: list[Any] = []
    for k, part in enumerate(body.split(b"\xff")):
        if part[:1] == b"\xfe":
            frames.append(BUFFER_TYPES[k % 3](part[1:]))
        else:
            try:
                frames.append(part.decode("utf-8", "surrogatepass"))
            except UnicodeDecodeError:
                frames.append(part.decode("utf-8", "replace"))
    return frames


def _round_trip(p: Any, max_depth: int) -> None:
    frames = speedups.encode(p.type, p.nsp, p.data, p.id)
    expected = pure.encode(p.type, p.nsp, p.data, p.id)
    assert [(type(f), f) for f in frames] == [(type(f), f) for f in expected], (frames, expected)
    # A placeholder used twice comes back as two attachments: allow them all.
    decoder = speedups.Decoder(max_attachments=max(10, len(frames)), max_depth=max_depth)
    got = None
    for frame in frames:
        got = decoder.feed(frame)
    assert got is not None and _packet(got) == _packet(p), (p, frames, got)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    flags = data[0]
    max_attachments = MAX_ATTACHMENTS[flags & 3]
    max_depth = MAX_DEPTH[(flags >> 2) & 3]
    fast = speedups.Decoder(max_attachments=max_attachments, max_depth=max_depth)
    slow = pure.Decoder(max_attachments=max_attachments, max_depth=max_depth)
    for frame in _frames(data[1:]):
        got, packet = _feed(fast, frame)
        expected, _ = _feed(slow, frame)
        assert got == expected, (frame, got, expected)
        assert fast.pending == slow.pending, frame
        if packet is not None:
            _round_trip(packet, max_depth)


def main() -> None:
    if atheris is None:
        sys.exit("atheris is not installed: pip install atheris")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
