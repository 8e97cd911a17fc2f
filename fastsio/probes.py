"""Observers of a server's traffic: the hooks the admin UI and the metrics use.

A probe is an object with three methods, called by the Socket.IO layer:

- ``on_read(client, data)``: one Engine.IO message arrived from ``client``
  (a text ``str`` or a binary ``bytes`` part of a packet);
- ``on_write(client, parts)``: one packet was written to ``client`` alone
  (an emit, an ack, a CONNECT answer); ``parts`` are its frames;
- ``on_broadcast(nsp, packet, parts, count)``: one broadcast reached
  ``count`` local connections; ``parts`` are the frames every one of them got.

``Server._probes`` is empty unless something is enabled, and the hot paths
test it once per message (once per broadcast, never per recipient), so a
server without observers pays a truth test and nothing else. A probe must be
fast and must not raise: it runs inside the write path.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence, Union

if TYPE_CHECKING:
    from .client import Client
    from .namespace import Namespace
    from .server import Server

__all__ = ["Probe", "add_probe", "remove_probe", "frames_size"]


class Probe:
    """A probe that ignores everything; subclasses override what they count."""

    def on_read(self, client: "Client", data: Union[str, bytes]) -> None:
        """One Engine.IO message arrived from ``client``."""

    def on_write(self, client: "Client", parts: Sequence[Union[str, bytes]]) -> None:
        """One packet (``parts``) was written to ``client`` alone."""

    def on_broadcast(self, nsp: "Namespace", packet: Any, parts: Sequence[Union[str, bytes]], count: int) -> None:
        """One broadcast of ``packet`` (frames ``parts``) reached ``count`` connections."""


def add_probe(server: "Server", probe: Any) -> None:
    """Starts calling ``probe`` (idempotent)."""
    if probe not in server._probes:
        server._probes.append(probe)


def remove_probe(server: "Server", probe: Any) -> None:
    """Stops calling ``probe`` (idempotent)."""
    if probe in server._probes:
        server._probes.remove(probe)


def frames_size(parts: Sequence[Union[str, bytes]]) -> int:
    """Bytes the frames carry (UTF-8 for text), as Node's ``Buffer.byteLength``."""
    size = 0
    for part in parts:
        if isinstance(part, str):
            size += len(part) if part.isascii() else len(part.encode("utf-8", "surrogatepass"))
        else:
            size += len(part)
    return size
