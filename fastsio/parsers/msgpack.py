"""The ``socket.io-msgpack-parser`` 3.x wire format.

``fastsio.Server(parser=fastsio.parsers.msgpack)`` makes the server speak to
clients built with the msgpack parser (``io(url, {parser})`` in
socket.io-client). One Socket.IO packet is one MessagePack map in one binary
Engine.IO message; binary stays inline, so a broadcast is still one encode
and one frame per transport kind. The codec is compiled
(``fastsio._speedups.msgpack_codec``) with a pure-Python twin; see its
docstring for the exact rules and limits.

Example:
    >>> import fastsio
    >>> io = fastsio.Server(parser=fastsio.parsers.msgpack)
"""
from __future__ import annotations

from .._impl import msgpack_codec as _codec

__all__ = ["encode", "encode_event", "Decoder", "NAME"]

#: what ``encode`` and ``Decoder`` speak, for logs and the admin UI
NAME = "msgpack"

encode = _codec.encode
encode_event = _codec.encode_event
Decoder = _codec.Decoder
