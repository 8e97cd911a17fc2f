"""The Engine.IO session cookie: Node's ``cookie`` option, checked once and rendered as Node renders it.

Node's engine.io serializes the cookie with the npm ``cookie`` package on every
handshake and throws there on a bad option; here the options are checked when
the Engine is built (a bad one is an error at construction) and everything
but the session id is rendered once. The attribute order is Node's, so the
header is byte-for-byte the same (tests/interop/test_cookie.py compares with a
live Node server).
"""
from __future__ import annotations

import datetime as _dt
import math
import re
from email.utils import format_datetime
from typing import Any, Optional, Union
from urllib.parse import quote

__all__ = ["COOKIE_KEYS", "SessionCookie", "session_cookie"]

#: the snake_case of Node's cookie options (engine.io's ``cookie`` + the npm ``cookie`` package)
COOKIE_KEYS = ("name", "path", "domain", "http_only", "same_site", "secure", "max_age", "expires",
               "partitioned", "priority")
# engine.io's defaults, merged under what the user gives
_DEFAULTS: dict[str, Any] = {"name": "io", "path": "/", "http_only": True, "same_site": "lax"}

# RFC 6265 / RFC 7230 token; the same sets as the npm cookie package checks
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_DOMAIN = re.compile(r"\.?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\Z",
                     re.IGNORECASE)
_PATH = re.compile(r"[\x20-\x3a\x3d-\x7e]*\Z")
_SAME_SITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
_PRIORITY = {"low": "Low", "medium": "Medium", "high": "High"}
# what encodeURIComponent leaves as it is: ids made by the default generator are all safe
_SAFE_ID = re.compile(r"[A-Za-z0-9\-_.!~*'()]*\Z")


class SessionCookie:
    """The ``Set-Cookie`` value for a session id; built from the ``cookie`` option (True or a dict).

    Raises:
        TypeError: an unknown key, or a value of the wrong type.
        ValueError: a value the cookie syntax does not allow (a name that is not a
            token, a path with ``;`` or a control character, an unknown ``same_site``).
    """

    __slots__ = ("name", "_prefix", "_suffix")

    def __init__(self, option: Union[bool, dict[str, Any]]) -> None:
        if option is True:
            opts = dict(_DEFAULTS)
        elif isinstance(option, dict):
            unknown = sorted(str(k) for k in option if k not in COOKIE_KEYS)
            if unknown:
                raise TypeError(f"unknown cookie option(s) {', '.join(map(repr, unknown))}; "
                                f"known: {', '.join(COOKIE_KEYS)}")
            opts = {**_DEFAULTS, **option}
        else:
            raise TypeError(f"cookie must be False, True or a dict, not {type(option).__name__}")
        name = opts["name"]
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"cookie name {name!r} is not a cookie token")
        self.name = name
        self._prefix = name + "="
        self._suffix = "".join("; " + part for part in _attributes(opts))

    def header(self, sid: str) -> str:
        """``name=sid; attributes`` (the id percent-encoded as encodeURIComponent would, if it needs it)."""
        if not _SAFE_ID.match(sid):
            sid = quote(sid, safe="-_.!~*'()")
        return self._prefix + sid + self._suffix


def _attributes(opts: dict[str, Any]) -> list[str]:
    parts = []
    max_age = opts.get("max_age")
    if max_age is not None:
        if isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or not math.isfinite(max_age):
            raise TypeError(f"cookie max_age must be a finite number of seconds, not {max_age!r}")
        parts.append(f"Max-Age={math.floor(max_age)}")
    domain = opts.get("domain")
    if domain:
        if not isinstance(domain, str) or not _DOMAIN.match(domain):
            raise ValueError(f"cookie domain {domain!r} is not a domain name")
        parts.append("Domain=" + domain)
    path = opts.get("path")
    if path:
        if not isinstance(path, str) or not _PATH.match(path):
            raise ValueError(f"cookie path {path!r} holds a ';', a '<' or a control character")
        parts.append("Path=" + path)
    expires = opts.get("expires")
    if expires:
        if not isinstance(expires, _dt.datetime):
            raise TypeError(f"cookie expires must be a datetime, not {type(expires).__name__}")
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=_dt.timezone.utc)
        parts.append("Expires=" + format_datetime(expires.astimezone(_dt.timezone.utc), usegmt=True))
    if opts.get("http_only"):
        parts.append("HttpOnly")
    if opts.get("secure"):
        parts.append("Secure")
    if opts.get("partitioned"):
        parts.append("Partitioned")
    priority = opts.get("priority")
    if priority:
        rendered = _PRIORITY.get(priority.lower()) if isinstance(priority, str) else None
        if rendered is None:
            raise ValueError(f"cookie priority must be 'low', 'medium' or 'high', not {priority!r}")
        parts.append("Priority=" + rendered)
    same_site = opts.get("same_site")
    if same_site:
        rendered = "Strict" if same_site is True else (
            _SAME_SITE.get(same_site.lower()) if isinstance(same_site, str) else None)
        if rendered is None:
            raise ValueError(f"cookie same_site must be True, 'lax', 'strict' or 'none', not {same_site!r}")
        parts.append("SameSite=" + rendered)
    return parts


def session_cookie(option: Union[bool, dict[str, Any], None]) -> Optional[SessionCookie]:
    """The cookie an Engine sets, or None when ``option`` is falsy."""
    if not option:
        return None
    return SessionCookie(option)
