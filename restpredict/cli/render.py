"""What the CLI shows people: the startup panel, the model table, prediction output."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import IO, Any, Literal

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from restpredict._version import __version__
from restpredict.settings import Settings

__all__ = ["BatchProgress", "OutputFormat", "PredictionWriter", "metadata_table", "startup_panel"]

OutputFormat = Literal["table", "json", "csv"]


def metadata_table(meta: dict[str, Any]) -> Table:
    """The model's schema and provenance, one field a row, then one row per feature."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold cyan")
    table.add_column()
    fields = [
        ("name", meta.get("name")),
        ("source", meta.get("source") if meta.get("source") != meta.get("model_file") else None),
        ("revision", meta.get("source_revision")),
        ("file", meta.get("model_file")),
        ("sha256", meta.get("sha256")),
        ("estimator", meta.get("estimator")),
        ("task", meta.get("task")),
        ("features", meta.get("n_features")),
        ("classes", _short(meta.get("classes"))),
        ("probabilities", "yes" if meta.get("has_proba") else "no"),
        ("scikit-learn", _versions(meta)),
        ("backend", _backend(meta)),
    ]
    for key, value in fields:
        if value is not None:
            table.add_row(key, str(value))
    names = meta.get("feature_names")
    nullable = meta.get("feature_nullable")
    if names:
        kinds = meta.get("feature_kinds") or ["number"] * len(names)
        flags = nullable or [False] * len(names)
        columns = ", ".join(
            f"{n} ({k}{', nullable' if null else ''})" for n, k, null in zip(names, kinds, flags)
        )
        table.add_row("columns", columns)
    if nullable is not None:
        table.add_row("missing values", _missing(nullable))
    requires = meta.get("requires")
    if requires:
        table.add_row("requires", ", ".join(f"{n}=={v}" for n, v in requires.items()))
    if meta.get("system_packages"):
        table.add_row("system", ", ".join(meta["system_packages"]))
    if meta.get("unprovided_modules"):
        table.add_row("not found", ", ".join(meta["unprovided_modules"]))
    return table


def _missing(nullable: list[bool]) -> str:
    """Which features take a null, in a few words."""
    count = sum(nullable)
    if count == len(nullable):
        return "accepted in every feature (send null)"
    if count == 0:
        return "refused (every feature needs a value)"
    return f"accepted in {count} of {len(nullable)} features"


def _backend(meta: dict[str, Any]) -> str | None:
    backend = meta.get("backend")
    fast_path = meta.get("fast_path")
    return f"{backend}: {fast_path}" if backend and fast_path else backend


def startup_panel(meta: dict[str, Any], settings: Settings, example: list[Any]) -> Panel:
    """Model summary, the URL and a curl command that works as pasted."""
    local = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    bound = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{local}:{settings.port}"
    body = json.dumps({"features": example})
    curl = f"curl -s {url}/predict -H 'Content-Type: application/json' -d '{body}'"
    lines: list[RenderableType] = [
        metadata_table(meta),
        Text(""),
        Text.assemble(
            ("Serving on ", "bold"),
            (f"http://{bound}:{settings.port}", "bold green"),
            f"  workers: {settings.workers}",
        ),
        Text.assemble(("Try: ", "bold"), curl),
    ]
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        lines.append(
            Text(f"Listening on {settings.host}: reachable from other machines.", "yellow")
        )
    return Panel(Group(*lines), title=f"restpredict {__version__}", expand=False)


class PredictionWriter:
    """Writes prediction chunks as they arrive: JSON Lines, CSV, or one rich table at the end."""

    def __init__(self, fmt: OutputFormat, out: IO[str]) -> None:
        self.fmt = fmt
        self.out = out
        self.table: Table | None = None
        self._csv: Any = None
        self._row = 0

    def write(self, document: dict[str, Any]) -> None:
        """One server-shaped document: ``predictions`` and/or ``probabilities`` lists."""
        for label, proba in _rows(document):
            {"json": self._json, "csv": self._csv_row, "table": self._table_row}[self.fmt](
                label, proba
            )
            self._row += 1

    def _json(self, label: Any, proba: dict[str, float] | None) -> None:
        record: dict[str, Any] = {}
        if label is not _MISSING:
            record["prediction"] = label
        if proba is not None:
            record["probabilities"] = proba
        self.out.write(json.dumps(record) + "\n")

    def _csv_row(self, label: Any, proba: dict[str, float] | None) -> None:
        if self._csv is None:
            self._csv = csv.writer(self.out, lineterminator="\n")
            header = ["prediction"] if label is not _MISSING else []
            self._csv.writerow(header + [f"proba_{c}" for c in proba or {}])
        values = [label] if label is not _MISSING else []
        self._csv.writerow(values + list((proba or {}).values()))

    def _table_row(self, label: Any, proba: dict[str, float] | None) -> None:
        if self.table is None:
            self.table = Table("row")
            if label is not _MISSING:
                self.table.add_column("prediction", style="bold")
            for name in proba or {}:
                self.table.add_column(f"P({name})", justify="right")
        values = [str(label)] if label is not _MISSING else []
        self.table.add_row(str(self._row), *values, *(f"{p:.4f}" for p in (proba or {}).values()))


_MISSING = object()


class BatchProgress:
    """Batch scoring's progress bar: rows done, rows/s and ETA; drawn only on a terminal."""

    def __init__(self, console: Console) -> None:
        self._bar = Progress(
            TextColumn("scoring"),
            BarColumn(),
            MofNCompleteColumn(),
            _RowsPerSecond(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
            transient=True,
        )
        self._task = self._bar.add_task("rows", total=None, start=False)

    def __enter__(self) -> BatchProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def start(self, total: int | None) -> None:
        """The row count, when the input's metadata gives it (Parquet, Arrow)."""
        self._bar.update(self._task, total=total)
        self._bar.start_task(self._task)

    def advance(self, rows: int) -> None:
        """``rows`` more rows written."""
        self._bar.advance(self._task, rows)


class _RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "", style="progress.data.speed")


def _rows(document: dict[str, Any]) -> Iterable[tuple[Any, dict[str, float] | None]]:
    labels = document.get("predictions")
    probas = document.get("probabilities")
    n = len(labels) if labels is not None else len(probas or [])
    for i in range(n):
        yield (
            labels[i] if labels is not None else _MISSING,
            probas[i] if probas is not None else None,
        )


def _short(values: list[Any] | None, limit: int = 10) -> str | None:
    if values is None:
        return None
    shown = ", ".join(map(str, values[:limit]))
    return shown + (f", … ({len(values)} in all)" if len(values) > limit else "")


def _versions(meta: dict[str, Any]) -> str:
    trained = meta.get("sklearn_version_trained") or "unknown"
    running = meta.get("sklearn_version_running")
    return f"trained {trained}, running {running}"
