"""python-socketio's exception classes, with its names (``socketio.exceptions``).

Tree::

    SocketIOError
     ├── ConnectionError
     │    └── ConnectionRefusedError   raise it in a connect handler to refuse
     ├── TimeoutError                  AsyncServer.call() got no answer in time
     ├── BadNamespaceError
     └── DisconnectedError

These names shadow builtins on purpose: python-socketio apps catch
``socketio.exceptions.ConnectionRefusedError`` and ``socketio.exceptions.TimeoutError``.
The builtin ``ConnectionRefusedError`` raised in a connect handler refuses too.
"""
from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "SocketIOError",
    "ConnectionError",
    "ConnectionRefusedError",
    "TimeoutError",
    "BadNamespaceError",
    "DisconnectedError",
]


class SocketIOError(Exception):
    """The root of the python-socketio exceptions."""


class ConnectionError(SocketIOError):  # noqa: A001 - python-socketio's name
    """A connection could not be made or was lost."""


class ConnectionRefusedError(ConnectionError):  # noqa: A001 - python-socketio's name
    """Raise it from a ``connect`` handler to refuse the connection.

    The client gets ``connect_error`` with ``{"message": str(args[0])}``, and
    ``"data"``: ``args[1]`` when there are two arguments, ``args[1:]`` (a list)
    when there are more. Without arguments the message is
    ``"Connection rejected by server"``.

    Attributes:
        error_args: the payload sent to the client.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        if not args:
            self.error_args: dict[str, Any] = {"message": "Connection rejected by server"}
        else:
            self.error_args = {"message": str(args[0])}
            if len(args) == 2:
                self.error_args["data"] = args[1]
            elif len(args) > 2:
                self.error_args["data"] = list(args[1:])


class TimeoutError(SocketIOError):  # noqa: A001 - python-socketio's name
    """``AsyncServer.call()`` got no answer within its timeout."""


class BadNamespaceError(SocketIOError):
    """A namespace is not connected or not allowed."""


class DisconnectedError(SocketIOError):
    """The client is disconnected."""


#: the builtin, which a connect handler may raise as well
BuiltinConnectionRefusedError = builtins.ConnectionRefusedError
