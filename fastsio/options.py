"""The options of ``Server`` and ``Engine``, declared once, with their types and defaults.

Each option is one line of a ``TypedDict``: its name, its type and, as the
``Annotated`` metadata, its default. ``Server(**options)`` and
``Engine(**options)`` are typed with ``Unpack`` of these dicts, so mypy and
editors know every option, and :func:`resolve` checks the keywords at
construction: an unknown one raises ``TypeError`` naming the closest valid
option (``did you mean 'ping_interval'?``).

Adding an option is one line here (in ``EngineTuning`` for an Engine.IO
option, which ``Server`` then accepts too; in ``ServerOptions`` for a
Socket.IO one), then reading it from the resolved dict where it is used.
"""
import difflib
from typing import Annotated, Any, Callable, Iterable, Optional, TypedDict, Union, get_type_hints

__all__ = ["EngineTuning", "EngineOptions", "ServerOptions", "defaults", "resolve", "engine_option_names"]


class EngineTuning(TypedDict, total=False):
    """Engine.IO options shared by ``Engine`` and ``Server`` (everything but ``path``)."""

    ping_interval: Annotated[float, 25]
    ping_timeout: Annotated[float, 20]
    upgrade_timeout: Annotated[float, 10]
    max_http_buffer_size: Annotated[int, 1_000_000]
    allow_request: Annotated[Optional[Callable[..., Any]], None]
    transports: Annotated[Iterable[str], ("polling", "websocket")]
    allow_upgrades: Annotated[bool, True]
    per_message_deflate: Annotated[Union[bool, dict[str, Any]], False]
    http_compression: Annotated[Union[bool, dict[str, Any]], True]
    cookie: Annotated[Union[bool, dict[str, Any]], False]
    cors: Annotated[Optional[dict[str, Any]], None]
    allow_eio3: Annotated[bool, False]
    initial_packet: Annotated[Any, None]
    add_trailing_slash: Annotated[bool, True]
    header_timeout: Annotated[float, 5.0]
    keep_alive_timeout: Annotated[float, 5.0]
    body_timeout: Annotated[float, 10.0]
    max_buffered_bytes: Annotated[int, 16 * 1024 * 1024]
    drop_volatile_above: Annotated[int, 1024 * 1024]
    drain_timeout: Annotated[float, 30.0]


class EngineOptions(EngineTuning, total=False):
    """Options of a standalone ``Engine``."""

    path: Annotated[str, "/engine.io/"]


class ServerOptions(EngineTuning, total=False):
    """Options of ``Server``: the Socket.IO ones and every Engine.IO one."""

    path: Annotated[str, "/socket.io/"]
    serve_client: Annotated[bool, True]
    adapter: Annotated[Optional[Callable[..., Any]], None]
    parser: Annotated[Any, None]
    connect_timeout: Annotated[Optional[float], 45]
    connection_state_recovery: Annotated[Union[None, bool, dict[str, Any]], None]
    cleanup_empty_child_namespaces: Annotated[bool, False]
    metrics: Annotated[Union[bool, dict[str, Any]], False]


_DEFAULTS: dict[type, dict[str, Any]] = {}


def defaults(spec: type) -> dict[str, Any]:
    """The default of every option of ``spec`` (a copy)."""
    found = _DEFAULTS.get(spec)
    if found is None:
        found = {}
        for name, hint in get_type_hints(spec, include_extras=True).items():
            meta = getattr(hint, "__metadata__", None)
            if not meta:
                raise TypeError(f"option {spec.__name__}.{name} has no default (write Annotated[type, default])")
            found[name] = meta[0]
        _DEFAULTS[spec] = found
    return dict(found)


def engine_option_names() -> frozenset[str]:
    """The options ``Server`` passes on to its ``Engine`` (``path`` is set by the server)."""
    return frozenset(defaults(EngineTuning))


def resolve(spec: type, given: Any, owner: str) -> dict[str, Any]:
    """Check ``given`` against ``spec`` and return every option, defaults filled in.

    Raises:
        TypeError: an option ``spec`` does not declare, naming the closest one.
    """
    result = defaults(spec)
    for name, value in given.items():
        if name not in result:
            close = difflib.get_close_matches(name, list(result), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid options: {', '.join(sorted(result))}"
            raise TypeError(f"{owner}() got an unexpected option {name!r}{hint}")
        result[name] = value
    return result
