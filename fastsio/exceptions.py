"""Exceptions raised by fastsio.

The tree::

    FastsioError
     ├── ProtocolError            malformed wire data (codecs raise only this)
     │    ├── MessageTooLarge     a message over the configured size limit
     │    └── WebSocketError      a frame-level fault, carries the RFC 6455 close code
     ├── ConnectionRejected       raised by a middleware / connect handler: becomes CONNECT_ERROR
     ├── NamespaceNotFound        a client asked for a namespace the server does not have
     └── AckTimeout               (also a builtin TimeoutError) no ack arrived in time
"""
from __future__ import annotations

from typing import Any

__all__ = [
    "FastsioError",
    "ProtocolError",
    "MessageTooLarge",
    "WebSocketError",
    "ConnectionRejected",
    "NamespaceNotFound",
    "AckTimeout",
]


class FastsioError(Exception):
    """Root of every exception fastsio raises on purpose."""


class ProtocolError(FastsioError):
    """Data from the network does not follow the protocol."""


class MessageTooLarge(ProtocolError):
    """A message exceeds the configured size limit."""


class WebSocketError(ProtocolError):
    """A WebSocket frame breaks RFC 6455; ``code`` is the close code to send.

    Args:
        code: the close code (1002 protocol error, 1007 invalid data,
            1008 policy violation, 1009 message too big).
        reason: a short human-readable reason.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ConnectionRejected(FastsioError):
    """Refuses a namespace connection; the client gets ``connect_error``.

    Args:
        message: sent to the client as the error message.
        data: optional JSON-serialisable details, sent as ``err.data``.
    """

    def __init__(self, message: str = "Connection rejected", data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class NamespaceNotFound(FastsioError):
    """The client asked for a namespace that does not exist."""


class AckTimeout(FastsioError, TimeoutError):
    """No acknowledgement arrived within the timeout."""
