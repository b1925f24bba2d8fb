"""Prometheus metrics: one ``Metrics`` object per app, rendered for ``GET /metrics``. No HTTP here.

With one process the metrics live in the app's own ``CollectorRegistry`` (no
global state, so several apps can coexist in one test process). With several
workers each process writes its samples to files in a shared directory and any
worker answers a scrape by merging all of them: prometheus_client's multiprocess
mode. The library switches that mode on when it is *imported* with
``PROMETHEUS_MULTIPROC_DIR`` set, so ``server.run`` sets the variable before it
spawns workers and passes the same directory here; this module never reads it.
"""

from __future__ import annotations

import contextlib
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from restpredict._version import __version__
from restpredict.errors import StartupError

if TYPE_CHECKING:
    from restpredict.model.loading import LoadedModel

__all__ = [
    "LATENCY_BUCKETS",
    "ROW_BUCKETS",
    "Metrics",
    "Stage",
    "forget_worker",
    "reread_multiprocess_mode",
]

Stage = Literal["decode", "predict"]

# Decoding a small JSON body takes tens of microseconds and a linear model predicts in
# well under a millisecond, so the buckets start at half a millisecond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
ROW_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 50_000)
# Any token is a valid HTTP method; labelling only these keeps the series bounded.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """Every metric restpredict exports, the calls that record them, and the scrape output.

    The per-request families (requests, durations, rows, batch sizes) are recorded by the
    event loop's thread only. With one process they are plain numbers (``_PlainFamilies``);
    with several, prometheus_client's own metrics, which keep each worker's in its files.
    """

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        if multiprocess_dir is not None and not getattr(values.ValueClass, "_multiprocess", True):
            raise StartupError(
                "multi-worker metrics need PROMETHEUS_MULTIPROC_DIR set before prometheus_client "
                "is imported; start the server with restpredict.server.run"
            )
        self.multiprocess_dir = multiprocess_dir
        own = CollectorRegistry(auto_describe=True)
        self._families: _PlainFamilies | _ClientFamilies = (
            _PlainFamilies(own) if multiprocess_dir is None else _ClientFamilies(own)
        )
        self.in_flight = Gauge(
            "restpredict_requests_in_flight",
            "HTTP requests being handled right now, across all workers.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.model_load_seconds = Gauge(
            "restpredict_model_load_seconds",
            "Seconds the model's load took: read, verify, unpickle. With several workers, one "
            "series per live worker (pid), each the supervisor's one load it was started with.",
            registry=own,
            multiprocess_mode="liveall",
        )
        self.model_info = Gauge(
            "restpredict_model_info",
            "Always 1; the labels say which model file is being served.",
            [
                "name",
                "sha256",
                "estimator",
                "sklearn_version",
                "sklearn_version_trained",
                "restpredict_version",
            ],
            registry=own,
            multiprocess_mode="livemax",
        )
        self.model_requests = Counter(
            "restpredict_model_requests",
            "Requests answered by each model (name and version; empty: unversioned), by status.",
            ["model", "version", "status"],
            registry=own,
        )
        self._model_children: dict[tuple[str, str | None, int], Counter] = {}
        self.shadow_comparisons = Counter(
            "restpredict_shadow_comparisons",
            "Answers of a shadow version compared with the primary's: agree, disagree; or "
            "dropped (too many in flight), failed, unavailable.",
            ["model", "shadow_version", "outcome"],
            registry=own,
        )
        # One process: the in-flight count is a plain int the gauge reads at scrape time (two
        # locked updates per request saved). Several: each worker's count must be in its file.
        self._in_flight = 0
        if multiprocess_dir is None:
            self.in_flight.set_function(lambda: self._in_flight)
        self.registry = own if multiprocess_dir is None else _merged_registry(multiprocess_dir)

    def request_started(self) -> None:
        """An HTTP request is being handled (until ``request_finished``)."""
        if self.multiprocess_dir is None:
            self._in_flight += 1
        else:
            self.in_flight.inc()

    def request_finished(self) -> None:
        """The request ``request_started`` counted has been answered (or failed)."""
        if self.multiprocess_dir is None:
            self._in_flight -= 1
        else:
            self.in_flight.dec()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered HTTP request."""
        label = method if method in _METHODS else "OTHER"
        self._families.observe_request(route, label, str(status), seconds)

    def observe_stage(self, route: str, stage: Stage, seconds: float) -> None:
        """Time spent decoding a body or running the model."""
        self._families.observe_stage(route, stage, seconds)

    def observe_rows(self, route: str, rows: int) -> None:
        """The size of one validated prediction request."""
        self._families.observe_rows(route, rows)

    def observe_model_request(self, model: LoadedModel, status: int) -> None:
        """One request a model answered (or refused): per model and version, for several."""
        key = (model.name, model.version, status)
        child = self._model_children.get(key)
        if child is None:
            child = self._model_children[key] = self.model_requests.labels(
                model.name, model.version or "", str(status)
            )
        child.inc()

    def observe_shadow(self, name: str, version: str, outcome: str) -> None:
        """One shadow comparison's outcome (``asgi.shadow``)."""
        self.shadow_comparisons.labels(name, version, outcome).inc()

    def observe_batch(self, size: int) -> None:
        """The hook for a micro-batcher: call once per model call with the rows it joined."""
        self._families.observe_batch(size)

    def observe_model(self, model: LoadedModel, replacing: LoadedModel | None = None) -> None:
        """Record what this process serves and how long it took to load.

        ``replacing``: the model it took over from in place (a reload, a repository load), whose
        info series goes. In-place swaps happen with one worker only, where the series live in
        this process; with several, the supervisor starts new workers instead.
        """
        if replacing is not None:
            self.forget_model(replacing)
        self.model_load_seconds.set(model.load_seconds)
        self.model_info.labels(*_info_labels(model)).set(1)

    def forget_model(self, model: LoadedModel) -> None:
        """``model`` is served no more (replaced or unloaded): its info series goes."""
        with contextlib.suppress(KeyError):  # never recorded
            self.model_info.remove(*_info_labels(model))

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The scrape body and its content type, in the format the ``Accept`` header asks for."""
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type


def _info_labels(model: LoadedModel) -> tuple[str, ...]:
    """``restpredict_model_info``'s label values for ``model``."""
    return (
        model.name,
        model.sha256,
        model.schema.estimator,
        model.sklearn_running,
        model.sklearn_trained or "",
        __version__,
    )


def _merged_registry(directory: Path) -> CollectorRegistry:
    """A registry that reads every worker's files at scrape time (and holds nothing itself)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry


def reread_multiprocess_mode() -> None:
    """Have prometheus_client decide its mode again, from ``PROMETHEUS_MULTIPROC_DIR`` as it is now.

    The library decides when it is imported; forked workers inherit the supervisor's import,
    made before ``server.run`` set the variable.
    """
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def forget_worker(directory: Path, pid: int) -> None:
    """Drop a dead worker's live gauges (in-flight, load time, info); its counts stay summed."""
    mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


# The per-request families: name, help, label names and (histograms) buckets.
_HistogramSpec = tuple[str, str, tuple[str, ...], Sequence[float]]
_REQUESTS: tuple[str, str, tuple[str, ...]] = (
    "restpredict_requests",
    "HTTP requests answered, by route template, method and status code.",
    ("route", "method", "status"),
)
_REQUEST_SECONDS: _HistogramSpec = (
    "restpredict_request_duration_seconds",
    "Time from receiving a request to sending the last byte of its response.",
    ("route", "method"),
    LATENCY_BUCKETS,
)
_STAGE_SECONDS: dict[Stage, _HistogramSpec] = {
    stage: (
        f"restpredict_{stage}_duration_seconds",
        f"Time spent in the {stage} step of prediction requests.",
        ("route",),
        LATENCY_BUCKETS,
    )
    for stage in ("decode", "predict")
}
_ROWS: _HistogramSpec = (
    "restpredict_request_rows",
    "Rows per prediction request, counted after validation.",
    ("route",),
    ROW_BUCKETS,
)
_BATCH_SIZE: _HistogramSpec = (
    "restpredict_batch_size",
    "Rows per model call assembled by micro-batching (empty until batching is on).",
    (),
    ROW_BUCKETS,
)


class _PlainHistogram:
    """A histogram family as plain numbers: per label values, the sum and a count per bucket."""

    __slots__ = ("bounds", "documentation", "labelnames", "name", "series")

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = list(labelnames)
        self.bounds = [float(b) for b in buckets]
        #: label values -> [sum, count in bucket 0, ..., count above the last bound]
        self.series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = [0.0] * (len(self.bounds) + 2)
        series[0] += value
        series[1 + bisect_left(self.bounds, value)] += 1  # a bucket holds values <= its bound

    def collect(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        edges = [floatToGoString(b) for b in self.bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        for labels, series in list(self.series.items()):
            total, *counts = list(series)  # one copy: sum and counts of the same moment
            cumulative, buckets = 0.0, []
            for edge, count in zip(edges, counts):
                cumulative += count
                buckets.append((edge, cumulative))
            family.add_metric(list(labels), buckets, total)
        return family


class _PlainFamilies(Collector):
    """The per-request families of a single process, as plain numbers exported at scrape time.

    Only the event loop's thread records them, so they need no lock; prometheus_client's
    metrics take one for the sum and one for the bucket of every observation, and find the
    bucket by a linear scan: about 6 µs of a one-row request, of which this keeps 1.5.
    A scrape reads them from another thread: each series is copied at once, so its sum and
    counts agree.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.request_seconds = _PlainHistogram(*_REQUEST_SECONDS)
        self.stage_seconds = {
            stage: _PlainHistogram(*spec) for stage, spec in _STAGE_SECONDS.items()
        }
        self.rows = _PlainHistogram(*_ROWS)
        self.batch_size = _PlainHistogram(*_BATCH_SIZE)
        registry.register(self)

    def observe_request(self, route: str, method: str, status: str, seconds: float) -> None:
        key = (route, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        self.request_seconds.observe((route, method), seconds)

    def observe_stage(self, route: str, stage: Stage, seconds: float) -> None:
        self.stage_seconds[stage].observe((route,), seconds)

    def observe_rows(self, route: str, rows: int) -> None:
        self.rows.observe((route,), rows)

    def observe_batch(self, size: int) -> None:
        self.batch_size.observe((), size)

    def collect(self) -> Iterator[Metric]:
        name, documentation, labelnames = _REQUESTS
        requests = CounterMetricFamily(name, documentation, labels=list(labelnames))
        for labels, count in list(self.requests.items()):
            requests.add_metric(list(labels), count)
        yield requests
        yield self.request_seconds.collect()
        for histogram in self.stage_seconds.values():
            yield histogram.collect()
        yield self.rows.collect()
        yield self.batch_size.collect()


class _ClientFamilies:
    """The per-request families as prometheus_client metrics, which several workers need."""

    def __init__(self, registry: CollectorRegistry) -> None:
        name, documentation, labelnames = _REQUESTS
        self.requests = Counter(name, documentation, labelnames, registry=registry)
        name, documentation, labelnames, buckets = _REQUEST_SECONDS
        self.request_seconds = Histogram(
            name, documentation, labelnames, buckets=buckets, registry=registry
        )
        self.stage_seconds = {
            stage: Histogram(name, documentation, labelnames, buckets=buckets, registry=registry)
            for stage, (name, documentation, labelnames, buckets) in _STAGE_SECONDS.items()
        }
        name, documentation, labelnames, buckets = _ROWS
        self.rows = Histogram(name, documentation, labelnames, buckets=buckets, registry=registry)
        name, documentation, _, buckets = _BATCH_SIZE
        self.batch_size = Histogram(name, documentation, buckets=buckets, registry=registry)
        # The labelled children, by label values: ``labels()`` validates and locks on every
        # call. Keys are bounded like the series are (route templates, methods, statuses).
        self._children: dict[tuple[str, ...], tuple[Counter, Histogram]] = {}
        self._stage_children: dict[tuple[str, Stage], Histogram] = {}
        self._row_children: dict[str, Histogram] = {}

    def observe_request(self, route: str, method: str, status: str, seconds: float) -> None:
        children = self._children.get((route, method, status))
        if children is None:
            children = self._children[(route, method, status)] = (
                self.requests.labels(route, method, status),
                self.request_seconds.labels(route, method),
            )
        children[0].inc()
        children[1].observe(seconds)

    def observe_stage(self, route: str, stage: Stage, seconds: float) -> None:
        child = self._stage_children.get((route, stage))
        if child is None:
            child = self._stage_children[(route, stage)] = self.stage_seconds[stage].labels(route)
        child.observe(seconds)

    def observe_rows(self, route: str, rows: int) -> None:
        child = self._row_children.get(route)
        if child is None:
            child = self._row_children[route] = self.rows.labels(route)
        child.observe(rows)

    def observe_batch(self, size: int) -> None:
        self.batch_size.observe(size)
