"""How many positional arguments a handler requires (for Node-style callbacks).

A Node handler ported to Python declares the ack callback as one positional
parameter more than the event's arguments (``def on_x(data, callback)``);
``disconnect`` handlers may take ``(reason)`` or ``(reason, description)``.
Dispatch asks :func:`required_positional` to tell them apart. Parameters
with a default do not count, so the closure idiom ``lambda r, s=s: ...``
keeps its meaning. Plain functions and methods are read from their code
object (a few attribute lookups on the receive path); other callables
through ``inspect.signature``.
"""
from __future__ import annotations

import inspect
import types
from typing import Any, Callable

__all__ = ["required_positional", "VARIADIC"]

#: The handler takes ``*args``: it can take any number of positional arguments.
VARIADIC = -1

_CO_VARARGS = inspect.CO_VARARGS


def _from_function(fn: types.FunctionType) -> int:
    code = fn.__code__
    if code.co_flags & _CO_VARARGS:
        return VARIADIC
    defaults = fn.__defaults__
    return code.co_argcount - (len(defaults) if defaults else 0)


def required_positional(fn: Callable[..., Any]) -> int:
    """How many positional parameters without a default ``fn`` has, or ``VARIADIC``.

    Follows ``__wrapped__`` (``functools.wraps``, ``once`` wrappers) and
    leaves out the bound ``self`` of methods. A callable whose signature
    cannot be read counts as ``VARIADIC``.
    """
    if type(fn) is types.FunctionType and not hasattr(fn, "__wrapped__"):
        return _from_function(fn)
    if type(fn) is types.MethodType:
        func = fn.__func__
        if type(func) is types.FunctionType and not hasattr(func, "__wrapped__"):
            n = _from_function(func)
            return n if n == VARIADIC else max(n - 1, 0)
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return VARIADIC
    count = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return VARIADIC
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            count += 1
    return count
