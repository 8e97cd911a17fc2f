"""Prometheus metrics of a fastsio server.

``fastsio.Server(metrics=True)`` serves them in the Prometheus text format at
``/metrics`` on the server's own port (``metrics={"path": "/stats"}`` moves
it); ``fastsio.metrics.register(io, registry)`` puts the same metrics into a
``prometheus_client`` registry an application already serves. Both need the
optional ``prometheus-client`` package (``pip install fastsio[metrics]``).

The names Node users' dashboards use (``socket_io_*``) and what matters for
fan-out (``fastsio_*``):

=========================================  =========  =================================================
name                                        type       labels / meaning
=========================================  =========  =================================================
socket_io_connected                         gauge      ``namespace``: sockets connected now
socket_io_connect_total                     counter    ``namespace``
socket_io_disconnect_total                  counter    ``namespace``, ``reason`` (Node's reason strings)
socket_io_events_received_total             counter    ``namespace``, ``event``
socket_io_events_sent_total                 counter    ``namespace``, ``event`` (a broadcast counts once per recipient)
socket_io_recv_bytes                        untyped    bytes of Engine.IO messages received (only grows)
socket_io_transmit_bytes                    untyped    bytes of Engine.IO messages sent (only grows)
socket_io_errors_total                      counter    ``kind``: ``connection`` (refused handshakes), ``parse`` (bad packets)
engine_io_clients                           gauge      ``transport``: Engine.IO sessions now
fastsio_broadcasts_total                    counter    ``namespace``
fastsio_broadcast_recipients                histogram  connections one broadcast reached
fastsio_ack_latency_seconds                 histogram  from an emit asking for an ack to its answer
fastsio_ack_timeouts_total                  counter    acks that timed out
fastsio_volatile_dropped_total              counter    volatile packets dropped for slow clients
fastsio_slow_consumer_disconnects_total     counter    clients disconnected for not reading
fastsio_outbound_buffered_bytes             gauge      output waiting for all connections now
fastsio_adapter_messages_total              counter    ``direction``: ``published``, ``received``
fastsio_adapter_request_timeouts_total      counter    cluster requests that got no answer in time
=========================================  =========  =================================================

Counters carry the ``_total`` suffix on the wire (``socket_io_connect_total``);
the two byte counts keep the suffix-less names of Node's exporters.

Cost: counting is plain integer arithmetic, once per received message,
once per packet written to one client, once per broadcast (never per
recipient) and once per connection event; gauges and histograms are built
at scrape time. A hostile client cannot grow the registry: at most
``max_event_labels`` distinct event names get their own label, the rest are
counted under ``event="_other"``.
"""
from __future__ import annotations

import bisect
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence, Union

from .exceptions import AckTimeout
from .probes import Probe, add_probe, frames_size

if TYPE_CHECKING:
    from .namespace import Namespace
    from .server import Server
    from .socket import Socket

__all__ = ["register", "Metrics", "CONTENT_TYPE"]

logger = logging.getLogger(__name__)

#: the Prometheus text format's content type
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_RECIPIENT_BUCKETS = (1, 10, 100, 1_000, 10_000, 100_000)
_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ImportError("fastsio metrics need prometheus-client: pip install fastsio[metrics]") from None
    return prometheus_client


class _Histogram:
    """Bucket counts, kept as plain ints; exported at scrape time."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = list(bounds)
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        out = []
        total = 0
        for bound, n in zip(self.bounds, self.counts):
            total += n
            out.append((repr(float(bound)), float(total)))
        out.append(("+Inf", float(self.count)))
        return out


class Metrics(Probe):
    """The counters of one server, and the collector that exports them.

    Created by :func:`register`; ``collect()`` is what ``prometheus_client``
    calls at scrape time.
    """

    def __init__(self, io: "Server", max_event_labels: int = 100) -> None:
        self.io = io
        self.max_event_labels = max_event_labels
        self.connects: dict[str, int] = {}
        self.disconnects: dict[tuple[str, str], int] = {}
        self.received: dict[tuple[str, str], int] = {}
        self.sent: dict[tuple[str, str], int] = {}
        self._event_names: set[str] = set()
        self.recv_bytes = 0
        self.transmit_bytes = 0
        self.errors: dict[str, int] = {}
        self.broadcasts: dict[str, int] = {}
        self.recipients = _Histogram(_RECIPIENT_BUCKETS)
        self.ack_latency = _Histogram(_LATENCY_BUCKETS)
        self.ack_timeouts = 0
        self._engine_hooked = False
        for nsp in list(io._nsps.values()):
            self._watch(nsp)
        io.on("new_namespace", self._watch)
        add_probe(io, self)

    # -- labels -------------------------------------------------------------

    def _event_label(self, event: Any) -> str:
        name = event if isinstance(event, str) else str(event)
        if name in self._event_names:
            return name
        if len(self._event_names) < self.max_event_labels and len(name) <= 128:
            self._event_names.add(name)
            return name
        return "_other"

    # -- probe hooks ----------------------------------------------------------

    def on_read(self, client: Any, data: Union[str, bytes]) -> None:
        self.recv_bytes += frames_size((data,))

    def on_write(self, client: Any, parts: Sequence[Union[str, bytes]]) -> None:
        self.transmit_bytes += frames_size(parts)

    def on_broadcast(self, nsp: Any, packet: Any, parts: Sequence[Union[str, bytes]], count: int) -> None:
        name = nsp.name
        self.broadcasts[name] = self.broadcasts.get(name, 0) + 1
        self.recipients.observe(count)
        if count:
            self.transmit_bytes += count * frames_size(parts)
            data = packet.data
            if packet.type in (2, 5) and isinstance(data, list) and data:
                key = (name, self._event_label(data[0]))
                self.sent[key] = self.sent.get(key, 0) + count

    # -- connection events ------------------------------------------------

    def _hook_engine(self) -> None:
        engine = self.io._engine
        if self._engine_hooked or engine is None:
            return
        self._engine_hooked = True

        def on_error(*_: Any) -> None:
            self.errors["connection"] = self.errors.get("connection", 0) + 1

        engine.on("connection_error", on_error)

    def _watch(self, nsp: "Namespace") -> None:
        name = nsp.name

        def on_connection(socket: "Socket") -> None:
            self._hook_engine()
            self.connects[name] = self.connects.get(name, 0) + 1

            def received(event: Any = None, *_: Any) -> None:
                key = (name, self._event_label(event))
                self.received[key] = self.received.get(key, 0) + 1

            def sent(event: Any = None, *_: Any) -> None:
                key = (name, self._event_label(event))
                self.sent[key] = self.sent.get(key, 0) + 1

            def on_disconnect(reason: Any = None, *_: Any) -> None:
                key = (name, str(reason))
                self.disconnects[key] = self.disconnects.get(key, 0) + 1
                if reason == "parse error":
                    self.errors["parse"] = self.errors.get("parse", 0) + 1

            socket.on_any(received)
            # Emits to this socket only: broadcasts are counted per broadcast
            # in on_broadcast, not through the namespace's outgoing watchers.
            if socket._any_out is None:
                socket._any_out = []
            socket._any_out.append(sent)
            socket.on("disconnect", on_disconnect)

        nsp.prepend_listener("connection", on_connection)

    # -- acks (the Socket.IO layer wraps each ack callback when metrics are on) --

    def timed_ack(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """``callback`` that also records its ack's latency, or its timeout."""
        started = time.monotonic()

        def timed(*args: Any) -> Any:
            first = args[0] if args else None
            if isinstance(first, AckTimeout):
                self.ack_timeouts += 1
            elif not isinstance(first, BaseException):  # a disconnect fails it: neither
                self.ack_latency.observe(time.monotonic() - started)
            return callback(*args)

        return timed

    # -- export -------------------------------------------------------------

    def collect(self) -> Iterator[Any]:
        """The metric families, built now (``prometheus_client`` collector protocol)."""
        _prometheus()
        import prometheus_client.core as core
        io = self.io
        engine = io._engine

        g = core.GaugeMetricFamily("socket_io_connected", "Sockets connected now", labels=["namespace"])
        for name, nsp in list(io._nsps.items()):
            g.add_metric([name], len(nsp.sockets))
        yield g

        def counter(name: str, doc: str, labels: list[str], values: dict[Any, int]) -> Any:
            c = core.CounterMetricFamily(name, doc, labels=labels)
            for key, value in values.items():
                c.add_metric(list(key) if isinstance(key, tuple) else [key], value)
            return c

        yield counter("socket_io_connect", "Namespace connections", ["namespace"], self.connects)
        yield counter("socket_io_disconnect", "Namespace disconnections", ["namespace", "reason"], self.disconnects)
        yield counter("socket_io_events_received", "Events received from clients", ["namespace", "event"], self.received)
        yield counter("socket_io_events_sent", "Events sent to clients (per recipient)", ["namespace", "event"], self.sent)
        # Node's exporters call these without the _total suffix: untyped
        # keeps the names dashboards query (they only ever grow).
        yield core.UnknownMetricFamily("socket_io_recv_bytes", "Bytes of Engine.IO messages received",
                                       value=self.recv_bytes)
        yield core.UnknownMetricFamily("socket_io_transmit_bytes", "Bytes of Engine.IO messages sent",
                                       value=self.transmit_bytes)
        yield counter("socket_io_errors", "Refused connections and malformed packets", ["kind"], self.errors)

        clients = core.GaugeMetricFamily("engine_io_clients", "Engine.IO sessions now", labels=["transport"])
        by_transport = {"polling": 0, "websocket": 0}
        buffered = 0
        if engine is not None:
            for conn in list(engine.clients.values()):
                tname = conn.transport.name
                by_transport[tname] = by_transport.get(tname, 0) + 1
                buffered += _pending_bytes(conn)
        for tname, n in by_transport.items():
            clients.add_metric([tname], n)
        yield clients

        yield counter("fastsio_broadcasts", "Broadcasts sent", ["namespace"], self.broadcasts)
        h = core.HistogramMetricFamily("fastsio_broadcast_recipients", "Connections one broadcast reached")
        h.add_metric([], self.recipients.cumulative(), self.recipients.sum)
        yield h
        h = core.HistogramMetricFamily("fastsio_ack_latency_seconds", "Time from an emit asking for an ack to the answer")
        h.add_metric([], self.ack_latency.cumulative(), self.ack_latency.sum)
        yield h
        yield core.CounterMetricFamily("fastsio_ack_timeouts", "Acks that timed out", value=self.ack_timeouts)
        stats = getattr(engine, "stats", None) or {}
        yield core.CounterMetricFamily("fastsio_volatile_dropped", "Volatile packets dropped for slow clients",
                                       value=_stat(stats, "volatile_dropped"))
        yield core.CounterMetricFamily("fastsio_slow_consumer_disconnects", "Clients disconnected for not reading",
                                       value=_stat(stats, "slow_consumer_disconnects"))
        yield core.GaugeMetricFamily("fastsio_outbound_buffered_bytes", "Output waiting for all connections now",
                                     value=buffered)
        published = received = timeouts = 0
        for nsp in list(io._nsps.values()):
            counters = getattr(nsp.adapter, "counters", None) or {}
            published += _stat(counters, "published")
            received += _stat(counters, "received")
            timeouts += _stat(counters, "request_timeouts")
        m = core.CounterMetricFamily("fastsio_adapter_messages", "Cluster adapter messages", labels=["direction"])
        m.add_metric(["published"], published)
        m.add_metric(["received"], received)
        yield m
        yield core.CounterMetricFamily("fastsio_adapter_request_timeouts", "Cluster requests without an answer in time",
                                       value=timeouts)

    def render(self) -> bytes:
        """These metrics alone, in the Prometheus text format."""
        prom = _prometheus()
        registry = prom.CollectorRegistry(auto_describe=False)
        registry.register(self)
        return prom.generate_latest(registry)  # type: ignore[no-any-return]


def _stat(values: Any, key: str) -> int:
    if isinstance(values, dict):
        value = values.get(key, 0)
    else:
        value = getattr(values, key, 0)
    return int(value) if isinstance(value, (int, float)) else 0


def _pending_bytes(conn: Any) -> int:
    # What the session holds for a polling client, plus what the connection's
    # write buffer holds for a WebSocket one (fastsio's and the kernel's).
    total = int(getattr(conn, "_buffered", 0) or 0)
    http = getattr(getattr(conn, "transport", None), "conn", None)
    wbuf = getattr(http, "_wbuf", None)
    if wbuf is not None:
        total += int(getattr(wbuf, "buffered", 0) or 0)
    return total


def register(io: "Server", registry: Optional[Any] = None, *, max_event_labels: int = 100) -> Metrics:
    """Counts ``io``'s traffic and adds the metrics to ``registry``.

    Args:
        io: the server.
        registry: a ``prometheus_client.CollectorRegistry``; ``None`` for the
            process-wide default ``prometheus_client.REGISTRY``.
        max_event_labels: distinct event names that get their own label.

    Returns:
        The :class:`Metrics` collector.

    Raises:
        ImportError: ``prometheus-client`` is not installed.

    Example:
        >>> from prometheus_client import CollectorRegistry
        >>> registry = CollectorRegistry()
        >>> fastsio.metrics.register(io, registry)
    """
    prom = _prometheus()
    metrics = Metrics(io, max_event_labels)
    (registry if registry is not None else prom.REGISTRY).register(metrics)
    return metrics
