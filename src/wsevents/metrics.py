"""Server metrics: counters, gauges and histograms, in the Prometheus text format.

Every :class:`~wsevents.Server` has a :class:`ServerMetrics` as ``server.metrics``.
The hot path stays cheap: each connection's core counts its messages and
bytes in a plain list, which is read only when the metrics are rendered
(live connections) or when the connection ends (added to the totals here).

``server.metrics.render()`` is the exposition (Prometheus text format 0.0.4,
which OpenMetrics parsers also read); :func:`metrics_handler` serves it at
``/metrics`` as an ``http_handler``; with ``prometheus_client`` installed,
:meth:`ServerMetrics.register` adds it to a ``prometheus_client`` registry
instead. Only the standard library is used here.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator
from operator import add
from typing import Any, NamedTuple, Protocol

from .protocol.core import COUNT_FIELDS

__all__ = [
    "CONTENT_TYPE",
    "HANDSHAKE_BUCKETS",
    "KEEPALIVE_BUCKETS",
    "Family",
    "Histogram",
    "ServerMetrics",
    "merge_families",
    "metrics_handler",
    "render_families",
]

#: The ``Content-Type`` of :meth:`ServerMetrics.render`'s text.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Upper bounds (seconds) of the handshake time histogram's buckets.
HANDSHAKE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Upper bounds (seconds) of the keepalive round-trip histogram's buckets.
KEEPALIVE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                     2.5)

_KINDS = ("text", "binary")


class Histogram:
    """A histogram with fixed buckets (upper bounds, in increasing order; +Inf is implied)."""

    __slots__ = ("buckets", "counts", "sum", "count")

    def __init__(self, buckets: Iterable[float]) -> None:
        self.buckets = tuple(buckets)
        # One count per bucket, not cumulative (rendering makes them cumulative), plus +Inf.
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Record one observation."""
        self.counts[bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1


class Family(NamedTuple):
    """One metric: ``name`` (counters without ``_total``), its type and help, and its samples.

    Each sample is ``(suffix, labels, value)``; the sample's name is ``name + suffix``.
    """

    name: str
    type: str
    help: str
    samples: list[tuple[str, dict[str, str], float]]


class _Core(Protocol):
    counts: list[int]
    close_code_sent: int | None
    close_code_received: int | None


class _Codec(Protocol):
    raw_out: int
    wire_out: int
    wire_in: int
    raw_in: int


class ServerMetrics:
    """The figures of one server since it was created (``server.metrics``).

    ``stats`` is the server's ``stats`` dict (its refusal, overflow and
    timeout counters are shown here too); ``live()`` gives the ``(core,
    codec)`` pairs of the connections that have not ended; ``open_count()``
    the number of open connections.
    """

    def __init__(
        self,
        stats: dict[str, int],
        live: Callable[[], Iterable[tuple[_Core | None, _Codec | None]]],
        open_count: Callable[[], int],
    ) -> None:
        self.stats = stats
        self._live = live
        self._open_count = open_count
        #: Connections that completed the handshake.
        self.connections_total = 0
        #: Requests answered with an error status (refused handshakes, failed hooks), by status.
        self.refused: dict[int, int] = {}
        #: Close frames sent and received, by code (connections that have ended).
        self.close_codes_sent: dict[int, int] = {}
        self.close_codes_received: dict[int, int] = {}
        # Messages and bytes of the connections that have ended (COUNT_FIELDS order).
        self._ended = [0] * len(COUNT_FIELDS)
        # Deflate bytes of those: raw_out, wire_out, wire_in, raw_in.
        self._deflate = [0, 0, 0, 0]
        #: Seconds from the TCP (or TLS) connection to the connection's opening.
        self.handshake_seconds = Histogram(HANDSHAKE_BUCKETS)
        #: Round-trip seconds of the keepalive pings (``ping_interval``).
        self.keepalive_rtt_seconds = Histogram(KEEPALIVE_BUCKETS)
        #: In a worker (:mod:`wsevents.workers`): a coroutine function giving the exposition of
        #: every worker's figures summed, or None when the supervisor did not answer in time.
        self.gather_workers: Callable[[], Awaitable[str | None]] | None = None

    # -- recording (called by the server) --------------------------------------------------

    def _refuse(self, status: int) -> None:
        self.refused[status] = self.refused.get(status, 0) + 1

    def _ended_connection(self, core: _Core | None, codec: _Codec | None) -> None:
        """A connection ended: its counts join the totals."""
        if core is not None:
            # Both have one slot per COUNT_FIELDS; one pass in C rather than a Python loop.
            self._ended[:] = map(add, self._ended, core.counts)
            _bump(self.close_codes_sent, core.close_code_sent)
            _bump(self.close_codes_received, core.close_code_received)
        if codec is not None:
            d = self._deflate
            d[0] += codec.raw_out
            d[1] += codec.wire_out
            d[2] += codec.wire_in
            d[3] += codec.raw_in

    # -- reading ---------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Messages and payload bytes (uncompressed) so far, live connections included.

        Keys: ``text_in``, ``text_in_bytes``, ``binary_in``, ``binary_in_bytes``
        and the same with ``out``.
        """
        totals = list(self._ended)
        for core, _ in self._live():
            if core is not None:
                for i, n in enumerate(core.counts):
                    totals[i] += n
        return dict(zip(COUNT_FIELDS, totals, strict=True))

    def deflate_bytes(self) -> dict[str, int]:
        """permessage-deflate bytes so far.

        ``raw_out`` bytes were compressed to ``wire_out``; ``wire_in`` were inflated to ``raw_in``.
        """
        d = list(self._deflate)
        for _, codec in self._live():
            if codec is not None:
                d[0] += codec.raw_out
                d[1] += codec.wire_out
                d[2] += codec.wire_in
                d[3] += codec.raw_in
        return dict(zip(("raw_out", "wire_out", "wire_in", "raw_in"), d, strict=True))

    def families(self) -> list[Family]:
        """Every metric with its samples, labelled ``worker`` inside a worker process."""
        base: dict[str, str] = {}
        worker = os.environ.get("WSEVENTS_WORKER")
        if worker is not None:
            base["worker"] = worker
        return self._families(base)

    def _families(self, base: dict[str, str]) -> list[Family]:
        counts = self.counts()
        deflate = self.deflate_bytes()
        fams = [
            _gauge("wsevents_connections_open", "Open connections.", base, self._open_count()),
            _counter("wsevents_connections", "Connections that completed the opening handshake.", base,
                     [({}, self.connections_total)]),
            _counter("wsevents_handshakes_refused", "Requests answered with an error status, by status.",
                     base, [({"status": str(s)}, n) for s, n in sorted(self.refused.items())]),
        ]
        for direction, verb in (("in", "received"), ("out", "sent")):
            fams.append(_counter(
                f"wsevents_messages_{verb}", f"Messages {verb}, by kind.", base,
                [({"kind": k}, counts[f"{k}_{direction}"]) for k in _KINDS]))
            fams.append(_counter(
                f"wsevents_message_bytes_{verb}",
                f"Payload bytes (uncompressed) of the messages {verb}, by kind.",
                base, [({"kind": k}, counts[f"{k}_{direction}_bytes"]) for k in _KINDS]))
        for verb, codes in (("sent", self.close_codes_sent), ("received", self.close_codes_received)):
            fams.append(_counter(
                f"wsevents_close_codes_{verb}", f"Close frames {verb} by connections that ended, by code.",
                base, [({"code": str(c)}, n) for c, n in sorted(codes.items())]))
        directions = ("in", "out")
        fams += [
            _counter("wsevents_write_overflows",
                     "Connections closed with 1008 for not reading (max_write_buffer).",
                     base, [({}, self.stats.get("write_overflows", 0))]),
            _counter("wsevents_keepalive_timeouts",
                     "Connections closed with 1011 for a keepalive ping unanswered.",
                     base, [({}, self.stats.get("keepalive_timeouts", 0))]),
            _counter("wsevents_deflate_raw_bytes",
                     "Message bytes before compression (out) or after inflation (in).",
                     base, [({"direction": d}, deflate[f"raw_{d}"]) for d in directions]),
            _counter("wsevents_deflate_wire_bytes", "Compressed message bytes on the wire.",
                     base, [({"direction": d}, deflate[f"wire_{d}"]) for d in directions]),
            Family("wsevents_deflate_ratio", "gauge", "Compressed over uncompressed bytes (0 before any).",
                   [("", {**base, "direction": d}, _ratio(deflate[f"wire_{d}"], deflate[f"raw_{d}"]))
                    for d in directions]),
            _histogram("wsevents_handshake_seconds", "Opening handshake time.", base, self.handshake_seconds),
            _histogram("wsevents_keepalive_rtt_seconds", "Keepalive ping round-trip time.", base,
                       self.keepalive_rtt_seconds),
        ]
        return fams

    def render(self) -> str:
        """The exposition: Prometheus text format 0.0.4 (:data:`CONTENT_TYPE`)."""
        return render_families(self.families())

    def register(self, registry: Any = None) -> Any:
        """Add these figures to a ``prometheus_client`` registry (default: its global ``REGISTRY``).

        Returns the collector (``registry.unregister(collector)`` removes it).

        Raises:
            ImportError: ``prometheus_client`` is not installed (the ``prometheus`` extra).
        """
        from prometheus_client import REGISTRY
        from prometheus_client.metrics_core import Metric

        metrics = self

        class Collector:
            """A ``prometheus_client`` collector reading ``server.metrics`` at each scrape."""

            def collect(self) -> Iterator[Any]:
                for fam in metrics.families():
                    metric = Metric(fam.name, fam.help, fam.type)
                    for suffix, labels, value in fam.samples:
                        metric.add_sample(fam.name + suffix, labels, value)
                    yield metric

        collector = Collector()
        (REGISTRY if registry is None else registry).register(collector)
        return collector


# What the server records (internal API, not exported): the server calls nothing else that is
# private to ServerMetrics.
def record_refusal(metrics: ServerMetrics, status: int) -> None:
    """A request was answered with the error ``status``."""
    metrics._refuse(status)


def record_ended(metrics: ServerMetrics, core: _Core | None, codec: _Codec | None) -> None:
    """A connection ended: its counts (``core``'s, ``codec``'s) join the totals."""
    metrics._ended_connection(core, codec)


# What a worker sends its supervisor (internal API, not exported).
def unlabelled_families(metrics: ServerMetrics) -> list[Family]:
    """Every metric of ``metrics`` without the ``worker`` label: the supervisor sums its
    workers' figures."""
    return metrics._families({})


def metrics_handler(server: Any, handler: Callable[[Any], Any] | None = None,
                    path: str = "/metrics") -> Callable[[Any], Any]:
    """An ``http_handler`` serving ``server.metrics`` at ``path``; other requests go to ``handler``.

    ``create_server(http_handler=...)`` takes it; for a server already made,
    ``server.options.http_handler = metrics_handler(server, server.options.http_handler)``.
    A request of ``path`` with a query string is served too. Without
    ``handler``, other requests get what they get without an ``http_handler`` (426).
    In a worker of :func:`wsevents.serve` (``--workers``), it serves the sum of
    every worker's figures (503 if the supervisor does not answer in time).
    """

    def serve(request: Any) -> Any:
        if request.path.split("?", 1)[0] == path and request.method in ("GET", "HEAD"):
            if server.metrics.gather_workers is not None:
                return _serve_workers(server.metrics.gather_workers)
            return _exposition(server.metrics.render())
        return None if handler is None else handler(request)

    return serve


def _exposition(text: str) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"}, text.encode("utf-8")


async def _serve_workers(gather: Callable[[], Awaitable[str | None]]) -> tuple[int, dict[str, str], bytes]:
    text = await gather()
    if text is None:
        # No figures rather than one worker's: a sum that drops would read as counters reset.
        return 503, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}, \
            b"the workers' supervisor did not answer in time: no figures\n"
    return _exposition(text)


def render_families(families: Iterable[Family]) -> str:
    """``families`` in the Prometheus text format 0.0.4 (:data:`CONTENT_TYPE`)."""
    lines: list[str] = []
    for fam in families:
        shown = fam.name + "_total" if fam.type == "counter" else fam.name
        lines.append(f"# HELP {shown} {fam.help}")
        lines.append(f"# TYPE {shown} {fam.type}")
        for suffix, labels, value in fam.samples:
            lines.append(f"{fam.name}{suffix}{_labels(labels)} {_number(value)}")
    return "\n".join(lines) + "\n"


def merge_families(snapshots: Iterable[Iterable[Family]]) -> list[Family]:
    """The sum of several servers' :meth:`ServerMetrics.families` (without ``worker`` labels).

    Samples of the same name, suffix and labels are added up: counters,
    gauges and histograms alike (the servers' buckets are the same), except
    ``wsevents_deflate_ratio``, worked out again from the summed bytes.
    """
    merged: dict[str, tuple[Family, dict[tuple[str, tuple[tuple[str, str], ...]], float]]] = {}
    for snapshot in snapshots:
        for fam in snapshot:
            sums = merged.setdefault(fam.name, (fam, {}))[1]
            for suffix, labels, value in fam.samples:
                key = (suffix, tuple(labels.items()))
                sums[key] = sums.get(key, 0) + value
    families = [Family(fam.name, fam.type, fam.help,
                       [(s, dict(labels), v) for (s, labels), v in sums.items()])
                for fam, sums in merged.values()]
    return [_ratio_of(families) if fam.name == "wsevents_deflate_ratio" else fam for fam in families]


def _ratio_of(families: list[Family]) -> Family:
    """``wsevents_deflate_ratio`` worked out from ``families``' deflate byte counters."""
    by_name = {fam.name: fam for fam in families}

    def total(name: str, direction: str) -> float:
        fam = by_name.get(name)
        samples = [] if fam is None else fam.samples
        return sum(v for _, labels, v in samples if labels.get("direction") == direction)

    ratio = by_name["wsevents_deflate_ratio"]
    return ratio._replace(samples=[
        (suffix, labels, _ratio(total("wsevents_deflate_wire_bytes", labels.get("direction", "")),
                                total("wsevents_deflate_raw_bytes", labels.get("direction", ""))))
        for suffix, labels, _ in ratio.samples])


def _bump(table: dict[int, int], key: int | None) -> None:
    if key is not None:
        table[key] = table.get(key, 0) + 1


def _gauge(name: str, help: str, base: dict[str, str], value: float) -> Family:
    return Family(name, "gauge", help, [("", dict(base), value)])


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _counter(name: str, help: str, base: dict[str, str],
             values: list[tuple[dict[str, str], float]]) -> Family:
    return Family(name, "counter", help, [("_total", {**base, **labels}, v) for labels, v in values])


def _histogram(name: str, help: str, base: dict[str, str], hist: Histogram) -> Family:
    samples: list[tuple[str, dict[str, str], float]] = []
    running = 0
    for bound, n in zip(hist.buckets, hist.counts[:-1], strict=True):
        running += n
        samples.append(("_bucket", {**base, "le": _number(bound)}, running))
    samples.append(("_bucket", {**base, "le": "+Inf"}, hist.count))
    samples.append(("_count", dict(base), hist.count))
    samples.append(("_sum", dict(base), hist.sum))
    return Family(name, "histogram", help, samples)


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _escape(value: str) -> str:
    """A label value as the text format quotes it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))
