"""fastsio: a Socket.IO v4 server for Python with Cython hot paths.

Example:
    >>> import fastsio
    >>> io = fastsio.Server(cors={"origin": "*"})
    >>> @io.on("connection")
    ... def on_connection(socket):
    ...     socket.emit("hello", "world")
    >>> io.run(port=3000)
"""
from __future__ import annotations

# Implementation choice and version
from ._impl import IMPLEMENTATION
from ._version import __version__

# Socket.IO server
from .server import Server
from .namespace import Namespace
from .parent_namespace import ParentNamespace
from .socket import Handshake, Socket
from .client import Client

# Broadcasting
from .broadcast import BroadcastOperator, RemoteSocket

# Adapters
from .adapter import Adapter, BroadcastOptions, InMemoryAdapter, SessionAwareAdapter

# Engine.IO server
from .engineio import Engine

# ASGI integration (Node's attachApp)
from .asgi import ASGIApp

# Parsers other than the default JSON one (fastsio.parsers.msgpack)
from . import parsers

# Event emitter base
from .emitter import EventEmitter

# Exceptions
from .exceptions import (
    AckTimeout,
    ConnectionRejected,
    FastsioError,
    MessageTooLarge,
    NamespaceNotFound,
    ProtocolError,
    WebSocketError,
)

__all__ = [
    "IMPLEMENTATION",
    "parsers",
    "__version__",
    "Server",
    "Namespace",
    "ParentNamespace",
    "Socket",
    "Handshake",
    "Client",
    "BroadcastOperator",
    "RemoteSocket",
    "Adapter",
    "InMemoryAdapter",
    "SessionAwareAdapter",
    "BroadcastOptions",
    "Engine",
    "ASGIApp",
    "EventEmitter",
    "FastsioError",
    "ProtocolError",
    "MessageTooLarge",
    "WebSocketError",
    "ConnectionRejected",
    "NamespaceNotFound",
    "AckTimeout",
]
