"""Long-running coverage-guided fuzzing of the Engine.IO codec (atheris).

Not collected by pytest (the name does not start with ``test_``). Run with::

    pip install atheris
    python tests/fuzz/atheris_eio_codec.py -max_total_time=300 /tmp/corpus_eio

The first byte of an input picks the options (``max_packets``, v3 or v4 for
``decode_ws``, the text view of the body, bytes or a bytearray/memoryview);
the rest is the body, given to the compiled decoders ``decode_payload`` (bytes
and str), ``decode_payload_v3`` and ``decode_ws`` (str and bytes). Checks:

* only ProtocolError (or a subclass) escapes the compiled and pure decoders;
* the pure twin gives the same result (values and types) or the same
  exception type and message;
* whatever decodes, re-encoded by the compiled encoder, decodes to the same
  packets, and the pure encoder writes the same encoding.

Coverage feedback comes from the pure twin (the Python code is instrumented,
the compiled module is not); the compiled decoder sees the same inputs.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

try:
    import atheris
except ImportError:  # pragma: no cover - optional tool
    atheris = None

if atheris is not None:
    with atheris.instrument_imports():
        from fastsio._pure import eio_codec as pure
        from fastsio._speedups import eio_codec as speedups
        from fastsio.exceptions import ProtocolError

MAX_PACKETS = (10000, 1, 2, 5)


def _typed(value: Any) -> Any:
    """The value with the type of every leaf, so that 1 != True and str != bytes."""
    if isinstance(value, (list, tuple)):
        return (type(value), [_typed(v) for v in value])
    return (type(value), value)


def _outcome(fn: Callable[..., Any], *args: Any) -> tuple[tuple[Any, ...], Any]:
    """(("ok", typed result) or ("err", type, message), result); other exceptions escape."""
    try:
        result = fn(*args)
    except ProtocolError as exc:
        return ("err", type(exc), str(exc)), None
    return ("ok", _typed(result)), result


def _agree(name: str, *args: Any) -> Any:
    """Calls <name> in both twins, checks they agree; the compiled result or None."""
    got, result = _outcome(getattr(speedups, name), *args)
    expected, _ = _outcome(getattr(pure, name), *args)
    assert got == expected, (name, args, got, expected)
    return result


def _encode_both(name: str, *args: Any) -> Any:
    fast = getattr(speedups, name)(*args)
    assert _typed(fast) == _typed(getattr(pure, name)(*args)), (name, args)
    return fast


def test_one_input(data: bytes) -> None:
    if not data:
        return
    flags = data[0]
    body = data[1:]
    max_packets = MAX_PACKETS[flags & 3]
    eio3 = bool(flags & 4)
    if flags & 8:
        text = body.decode("latin-1")  # 1-byte kind with code points 0x80..0xFF
    else:
        try:
            text = body.decode("utf-8", "surrogatepass")  # lets lone surrogates in
        except UnicodeDecodeError:
            text = body.decode("utf-8", "replace")
    raw: Any = body
    if flags & 16:
        raw = bytearray(body)
    elif flags & 32:
        raw = memoryview(body)

    # v4 polling payload, as bytes and as str
    for arg in (raw, text):
        packets = _agree("decode_payload", arg, max_packets)
        if packets is not None:
            enc = _encode_both("encode_payload", packets)
            assert speedups.decode_payload(enc) == packets, (arg, enc)
            try:
                enc_b = enc.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogate from the str view
                enc_b = None
            if enc_b is not None:
                assert speedups.decode_payload(enc_b) == packets, (arg, enc_b)

    # v3 polling payload (bytes only), both encodings back
    packets = _agree("decode_payload_v3", raw, max_packets)
    if packets is not None:
        for supports_binary in (False, True):
            enc = _encode_both("encode_payload_v3", packets, supports_binary)
            if isinstance(enc, str):
                enc = enc.encode("utf-8")
            assert speedups.decode_payload_v3(enc) == packets, (body, supports_binary, enc)

    # WebSocket frame content: text and binary frames, v4 and v3
    for arg in (text, raw):
        pkt = _agree("decode_ws", arg, eio3)
        if pkt is not None:
            enc = _encode_both("encode_ws", pkt[0], pkt[1], eio3)
            assert speedups.decode_ws(enc, eio3) == pkt, (arg, eio3, enc)


def main() -> None:
    if atheris is None:
        sys.exit("atheris is not installed: pip install atheris")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
