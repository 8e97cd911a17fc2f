"""The one place that chooses between compiled and pure-Python codecs.

``FASTSIO_NO_EXTENSIONS=1`` forces the pure-Python twins. Otherwise the
Cython modules are imported, falling back to the twins on ImportError unless
``FASTSIO_REQUIRE_EXTENSIONS=1`` says the compiled ones must be there.
"""
from __future__ import annotations

import os
from types import ModuleType

__all__ = ["IMPLEMENTATION", "eio_codec", "ws_frames", "sio_codec", "fanout", "msgpack_codec", "http_fast"]


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


eio_codec: ModuleType
ws_frames: ModuleType
sio_codec: ModuleType
fanout: ModuleType
msgpack_codec: ModuleType
http_fast: ModuleType

if _flag("FASTSIO_NO_EXTENSIONS"):
    from ._pure import eio_codec, fanout, http_fast, msgpack_codec, sio_codec, ws_frames

    IMPLEMENTATION = "python"
else:
    try:
        from ._speedups import eio_codec, fanout, http_fast, msgpack_codec, sio_codec, ws_frames

        IMPLEMENTATION = "cython"
    except ImportError:
        if _flag("FASTSIO_REQUIRE_EXTENSIONS"):
            raise
        from ._pure import eio_codec, fanout, http_fast, msgpack_codec, sio_codec, ws_frames

        IMPLEMENTATION = "python"
