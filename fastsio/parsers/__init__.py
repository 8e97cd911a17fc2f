"""Socket.IO parsers a server can speak instead of the default JSON one.

A parser is any object with ``encode(type, nsp, data, id) -> list of frames``
and a ``Decoder`` class (``feed(frame) -> Packet | None``, ``reset()``,
``pending``), like ``fastsio._impl.sio_codec``, the default. Pass one as
``fastsio.Server(parser=...)``; every client must use the matching parser.

- :mod:`fastsio.parsers.msgpack`: ``socket.io-msgpack-parser`` 3.x.
"""
from . import msgpack

__all__ = ["msgpack"]
