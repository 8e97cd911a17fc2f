"""The command line: ``python -m fastsio serve MODULE:ATTR`` and ``python -m fastsio demo``.

``serve`` imports ``MODULE`` (from the current directory first, as uvicorn
does), takes ``ATTR`` from it and serves it on fastsio's own HTTP server
(uvloop + httptools):

- a :class:`fastsio.Server`;
- a python-socketio style server from :mod:`fastsio.compat` (anything that
  exposes the :class:`fastsio.Server` it runs on, see :func:`resolve_target`);
- an ASGI app wrapping either (:class:`fastsio.ASGIApp`, ``fastsio.compat.ASGIApp``):
  the Socket.IO path is served natively, every other path by the wrapper's
  other app, on the same port (``Server.run(app=...)``).

``--app MODULE:ATTR`` names another ASGI app (FastAPI, Starlette...) to serve
beside a bare server. Errors a user can fix (a module that does not import,
a missing attribute or one of the wrong kind, a port in use, a bad option)
print one line on stderr and exit with status 2; ``--log-level debug`` adds
the traceback.

Example:
    $ python -m fastsio serve myapp:io --port 3000 --app myapp:api
"""
from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

__all__ = ["main", "resolve_target", "load_attr", "Target", "CliError", "RESOLVERS"]

log = logging.getLogger("fastsio.cli")

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

#: attribute names under which a wrapper (a compat server, an ASGI app) may
#: hold the :class:`fastsio.Server` it runs on, tried in this order
SERVER_ATTRS = ("fastsio_server", "io", "engineio_server", "server", "_server", "_io")


class CliError(Exception):
    """An error the user can fix: printed as one line, exit status 2."""


@dataclass
class Target:
    """What ``serve`` runs: a :class:`fastsio.Server` and the ASGI app hosted beside it.

    Attributes:
        server: the Socket.IO server (its ``run`` is called).
        app: an ASGI app for every path outside the Socket.IO path, or None.
        described: how the target was found, for the start-up line.
    """

    server: Any
    app: Optional[Callable[..., Any]]
    described: str


def _is_server(obj: Any) -> bool:
    import fastsio

    return isinstance(obj, fastsio.Server)


def _find_server(obj: Any) -> Optional[Any]:
    """The fastsio.Server an object wraps (directly or one level down), or None."""
    if _is_server(obj):
        return obj
    for name in SERVER_ATTRS:
        inner = getattr(obj, name, None)
        if inner is None or inner is obj:
            continue
        if _is_server(inner):
            return inner
        for name2 in SERVER_ATTRS:
            inner2 = getattr(inner, name2, None)
            if inner2 is not None and inner2 is not inner and _is_server(inner2):
                return inner2
    return None


def _resolve_server(obj: Any) -> Optional[Target]:
    if _is_server(obj):
        return Target(obj, None, "fastsio.Server")
    return None


def _looks_asgi(obj: Any) -> bool:
    return any(hasattr(obj, a) for a in ("other_app", "other_asgi_app"))


def _resolve_asgi_wrapper(obj: Any) -> Optional[Target]:
    # fastsio.ASGIApp, fastsio.compat.ASGIApp, or any ASGI app that says which
    # server it wraps: the wrapper itself is hosted for the non-Socket.IO paths,
    # so its own routing, static files and lifespan hooks keep working
    if not callable(obj) or isinstance(obj, type):
        return None
    if not _looks_asgi(obj):
        return None
    server = _find_server(obj)
    if server is None:
        return None
    return Target(server, obj, f"{type(obj).__module__}.{type(obj).__qualname__}")


def _resolve_wrapped_server(obj: Any) -> Optional[Target]:
    # a python-socketio style server of fastsio.compat: it holds the Server it runs on
    server = _find_server(obj)
    if server is None:
        return None
    return Target(server, None, f"{type(obj).__module__}.{type(obj).__qualname__}")


#: the resolution rules, tried in order; each returns a Target or None. Add a
#: rule here to serve a new kind of object.
RESOLVERS: list[Callable[[Any], Optional[Target]]] = [
    _resolve_server,
    _resolve_asgi_wrapper,
    _resolve_wrapped_server,
]


def resolve_target(obj: Any, spec: str = "the target") -> Target:
    """What to run for ``obj``: the first rule of :data:`RESOLVERS` that accepts it.

    Raises:
        CliError: ``obj`` is none of the kinds ``serve`` knows.
    """
    for rule in RESOLVERS:
        target = rule(obj)
        if target is not None:
            return target
    kind = type(obj).__qualname__ if not isinstance(obj, type) else f"class {obj.__qualname__}"
    hint = ""
    if callable(obj) and not isinstance(obj, type):
        hint = " (an ASGI app without Socket.IO goes beside a server with --app)"
    raise CliError(f"{spec} is {_a(kind)}, not a fastsio.Server, a fastsio.compat.AsyncServer "
                   f"or an ASGI app wrapping one{hint}")


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def load_attr(spec: str, what: str = "target") -> Any:
    """Import ``MODULE:ATTR`` (ATTR may be dotted) and return the attribute.

    Raises:
        CliError: bad spelling, a module that does not import, a missing attribute.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"{what} {spec!r} must be MODULE:ATTR (e.g. myapp:io)")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise CliError(f"cannot import module {module_name!r}: no module named {exc.name!r} "
                           f"(looked in {os.getcwd()} and sys.path)") from exc
        raise CliError(f"cannot import module {module_name!r}: {_one_line(exc)}") from exc
    except SystemExit as exc:
        raise CliError(f"cannot import module {module_name!r}: it called exit({exc.code!r})") from exc
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise CliError(f"cannot import module {module_name!r}: {_one_line(exc)}") from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CliError(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


def _one_line(exc: BaseException) -> str:
    where = ""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        where = f" ({os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno})"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}{where}" if text else f"{type(exc).__name__}{where}"


def _workers(value: str) -> "int | str":
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or 'auto', not {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def _port(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {value!r}") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, not {n}")
    return n


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line and status 2, like every other CLI error
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (``fastsio --help``)."""
    parser = _Parser(prog="fastsio", description="fastsio: a Socket.IO v4 server with Cython hot paths.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    serve = sub.add_parser("serve", help="serve MODULE:ATTR on the built-in server",
                           description="Serve a fastsio.Server, a fastsio.compat.AsyncServer or an ASGI app "
                                       "wrapping either on fastsio's own HTTP server.")
    serve.add_argument("target", metavar="MODULE:ATTR", help="what to serve, e.g. myapp:io")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=3000, help="port to listen on (default 3000)")
    serve.add_argument("--workers", type=_workers, default=1, metavar="N",
                       help="worker processes on the port: a number or 'auto' (default 1)")
    serve.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="default info")
    serve.add_argument("--app", metavar="MODULE:ATTR", default=None,
                       help="an ASGI app (FastAPI, Starlette...) for every path outside the Socket.IO path")
    demo = sub.add_parser("demo", help="the chat demo on http://127.0.0.1:3000/",
                          description="Serve the chat demo (fastsio.demo).")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=_port, default=3000)
    return parser


def _run(target: Target, host: str, port: int, workers: "int | str") -> None:
    import inspect

    options: dict[str, Any] = {}
    params = inspect.signature(target.server.run).parameters
    if target.app is not None:
        if "app" not in params:
            raise CliError("hosting an ASGI app beside the server is not available yet in this version of fastsio")
        options["app"] = target.app
    if workers != 1:
        # the multi-worker mode (issue 10): Server.run(workers=N) once it exists
        if "workers" not in params:
            raise CliError(f"--workers {workers}: the multi-worker mode is not available yet in this "
                           f"version of fastsio (use --workers 1)")
        options["workers"] = workers
    target.server.run(port=port, host=host, **options)


def _serve(args: argparse.Namespace) -> int:
    obj = load_attr(args.target)
    target = resolve_target(obj, args.target)
    if args.app is not None:
        if target.app is not None:
            raise CliError(f"{args.target} already hosts an ASGI app ({target.described}); drop --app")
        other = load_attr(args.app, "--app")
        if not callable(other) or isinstance(other, type) or _is_server(other):
            raise CliError(f"--app {args.app} is {_a(type(other).__qualname__)}, not an ASGI app")
        target.app = other
    import fastsio

    extra = ""
    if target.app is obj:
        extra = " (the Socket.IO path natively, every other path through it)"
    elif target.app is not None:
        extra = f" with the ASGI app {args.app} for every other path"
    log.info("fastsio %s (%s codecs): serving %s (%s)%s on http://%s:%d", fastsio.__version__,
             fastsio.IMPLEMENTATION, args.target, target.described, extra, args.host, args.port)
    try:
        _run(target, args.host, args.port, args.workers)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CliError(f"port {args.port} on {args.host} is in use") from exc
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES, errno.EPERM):
            raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
        if exc.errno is None and "address already in use" in str(exc).lower():
            raise CliError(f"port {args.port} on {args.host} is in use") from exc
        raise
    return 0


def _demo(args: argparse.Namespace) -> int:
    from . import demo

    argv = ["--host", args.host, "--port", str(args.port)]
    try:
        demo.main(argv)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CliError(f"port {args.port} on {args.host} is in use") from exc
        raise
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status (0, 1 on a crash, 2 on a usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    level = getattr(args, "log_level", "info")
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "serve":
            return _serve(args)
        return _demo(args)
    except CliError as exc:
        if level == "debug":
            log.debug("traceback", exc_info=exc.__cause__ or exc)
        print(f"fastsio: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def console_main() -> None:
    """The ``fastsio`` console script."""
    sys.exit(main())
