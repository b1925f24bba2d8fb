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

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from restpredict._version import __version__
from restpredict.errors import StartupError

if TYPE_CHECKING:
    from restpredict.model import LoadedModel

__all__ = ["LATENCY_BUCKETS", "ROW_BUCKETS", "Metrics", "Stage", "forget_worker"]

Stage = Literal["decode", "predict"]

# Decoding a small JSON body takes tens of microseconds and a linear model predicts in
# well under a millisecond, so the buckets start at half a millisecond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
ROW_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 50_000)
# Any token is a valid HTTP method; labelling only these keeps the series bounded.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """Every metric restpredict exports, the calls that record them, and the scrape output."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        if multiprocess_dir is not None and not getattr(values.ValueClass, "_multiprocess", True):
            raise StartupError(
                "multi-worker metrics need PROMETHEUS_MULTIPROC_DIR set before prometheus_client "
                "is imported; start the server with restpredict.server.run"
            )
        self.multiprocess_dir = multiprocess_dir
        own = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "restpredict_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=own,
        )
        self.request_seconds = Histogram(
            "restpredict_request_duration_seconds",
            "Time from receiving a request to sending the last byte of its response.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.stage_seconds = {
            stage: Histogram(
                f"restpredict_{stage}_duration_seconds",
                f"Time spent in the {stage} step of prediction requests.",
                ["route"],
                buckets=LATENCY_BUCKETS,
                registry=own,
            )
            for stage in ("decode", "predict")
        }
        self.rows = Histogram(
            "restpredict_request_rows",
            "Rows per prediction request, counted after validation.",
            ["route"],
            buckets=ROW_BUCKETS,
            registry=own,
        )
        self.batch_size = Histogram(
            "restpredict_batch_size",
            "Rows per model call assembled by micro-batching (empty until batching is on).",
            buckets=ROW_BUCKETS,
            registry=own,
        )
        self.in_flight = Gauge(
            "restpredict_requests_in_flight",
            "HTTP requests being handled right now, across all workers.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.model_load_seconds = Gauge(
            "restpredict_model_load_seconds",
            "Seconds it took to read, verify and unpickle the model (one series per worker).",
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
        # One process: the in-flight count is a plain int the gauge reads at scrape time (two
        # locked updates per request saved). Several: each worker's count must be in its file.
        self._in_flight = 0
        if multiprocess_dir is None:
            self.in_flight.set_function(lambda: self._in_flight)
        self.registry = own if multiprocess_dir is None else _merged_registry(multiprocess_dir)
        # The labelled children, by label values: ``labels()`` validates and locks on every
        # call, a measurable share of a one-row request. Keys are bounded like the series are
        # (route templates, known methods, status codes).
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._stage_children: dict[tuple[str, Stage], Histogram] = {}
        self._row_children: dict[str, Histogram] = {}

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
        children = self._request_children.get((route, method, status))
        if children is None:
            label = method if method in _METHODS else "OTHER"
            children = (
                self.requests.labels(route, label, str(status)),
                self.request_seconds.labels(route, label),
            )
            if label != "OTHER":  # any token is a method: cache only the bounded ones
                self._request_children[(route, method, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_stage(self, route: str, stage: Stage, seconds: float) -> None:
        """Time spent decoding a body or running the model."""
        child = self._stage_children.get((route, stage))
        if child is None:
            child = self._stage_children[(route, stage)] = self.stage_seconds[stage].labels(route)
        child.observe(seconds)

    def observe_rows(self, route: str, rows: int) -> None:
        """The size of one validated prediction request."""
        child = self._row_children.get(route)
        if child is None:
            child = self._row_children[route] = self.rows.labels(route)
        child.observe(rows)

    def observe_batch(self, size: int) -> None:
        """The hook for a micro-batcher: call once per model call with the rows it joined."""
        self.batch_size.observe(size)

    def observe_model(self, model: LoadedModel) -> None:
        """Record what this process serves and how long it took to load."""
        self.model_load_seconds.set(model.load_seconds)
        self.model_info.labels(
            model.name,
            model.sha256,
            model.schema.estimator,
            model.sklearn_running,
            model.sklearn_trained or "",
            __version__,
        ).set(1)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The scrape body and its content type, in the format the ``Accept`` header asks for."""
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type


def _merged_registry(directory: Path) -> CollectorRegistry:
    """A registry that reads every worker's files at scrape time (and holds nothing itself)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry


def forget_worker(directory: Path, pid: int) -> None:
    """Drop a dead worker's live gauges (in-flight, load time, info); its counts stay summed."""
    mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
