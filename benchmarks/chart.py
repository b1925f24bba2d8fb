"""A run's chart, drawn from its JSON document: each target's req/s as a ratio to the ceiling
server's, per load, one panel per model (PNG, for the documentation's performance page).

``chart_data`` picks the numbers (pure, tested on its own); ``render_png`` draws them with
matplotlib's Agg canvas, no display and no pyplot state. matplotlib comes from the ``bench``
extra and is imported only when a chart is drawn: a run itself does not need it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.errors import BenchmarkError
from benchmarks.models import NO_MODEL
from benchmarks.ratios import CEILING
from benchmarks.results import parse_time, write_bytes

#: (rows per request, clients) of one load.
Load = tuple[int, int]


@dataclass(frozen=True)
class ChartData:
    """What the chart shows: for each model, each target's ratio to the ceiling on each load."""

    title: str
    loads: tuple[Load, ...]
    #: model -> target -> one ratio per load (None: not measured).
    panels: dict[str, dict[str, list[float | None]]]


def chart_data(document: Mapping[str, Any]) -> ChartData:
    """The ratios to plot, in the order the run measured them; the ceiling is the 1.0 line."""
    cells = document["cells"]
    loads = tuple(dict.fromkeys((int(c["rows"]), int(c["concurrency"])) for c in cells))
    models = list(dict.fromkeys(str(c["model"]) for c in cells if c["model"] != NO_MODEL))
    targets = list(dict.fromkeys(str(c["target"]) for c in cells if c["target"] != CEILING))
    panels: dict[str, dict[str, list[float | None]]] = {}
    for model in models:
        panel: dict[str, list[float | None]] = {}
        for target in targets:
            ratios = [_ratio(cells, target, model, load) for load in loads]
            if any(ratio is not None for ratio in ratios):
                panel[target] = ratios
        panels[model] = panel
    return ChartData(_title(document), loads, panels)


def _ratio(cells: list[dict[str, Any]], target: str, model: str, load: Load) -> float | None:
    """req/s over the ceiling's on the same load, from the req/s themselves (a stored ratio may
    be rounded: small ones lose their only digit)."""
    mine = _requests_per_s(cells, target, model, load)
    ceiling = _requests_per_s(cells, CEILING, NO_MODEL, load)
    return None if mine is None or not ceiling else mine / ceiling


def _requests_per_s(
    cells: list[dict[str, Any]], target: str, model: str, load: Load
) -> float | None:
    for cell in cells:
        if (cell["target"], cell["model"], cell["rows"], cell["concurrency"]) == (
            target,
            model,
            *load,
        ):
            value = cell.get("requests_per_s")
            return None if value is None else float(value)
    return None


def _title(document: Mapping[str, Any]) -> str:
    run = document.get("run") or {}
    when = run.get("started_at")
    title = "restpredict benchmark"
    if isinstance(when, str):
        title += f", {parse_time(when):%Y-%m-%d %H:%M} UTC"
    if run.get("commit"):
        title += f" (commit {run['commit']})"
    return title + ": req/s relative to the ceiling server"


def render_png(data: ChartData) -> bytes:
    """The chart as PNG bytes, the same bytes for the same data."""
    # Imported here: matplotlib is the bench extra's, needed only to draw (see module docstring).
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        message = f"the chart needs matplotlib: pip install -e '.[bench]' ({error})"
        raise BenchmarkError(message) from error

    models = list(data.panels)
    figure = Figure(figsize=(11, 3.6 * max(1, len(models)) + 0.8), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(data.title, fontsize=11)
    axes_list = figure.subplots(max(1, len(models)), 1, squeeze=False)[:, 0]
    positions = range(len(data.loads))
    for axes, model in zip(axes_list, models):
        series = data.panels[model]
        width = 0.8 / max(1, len(series))
        for index, (target, ratios) in enumerate(series.items()):
            offsets = [p - 0.4 + width * (index + 0.5) for p in positions]
            heights = [0.0 if r is None else r for r in ratios]
            bars = axes.bar(offsets, heights, width, label=target)
            labels = ["" if r is None else f"{r:.2g}" if r < 0.1 else f"{r:.2f}" for r in ratios]
            axes.bar_label(bars, labels=labels, fontsize=6, padding=1, rotation=90)
        axes.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        axes.set_yscale("log")
        axes.set_ylim(0.005, 10)
        axes.set_ylabel(f"{model}: x ceiling req/s (log)")
        axes.set_xticks(list(positions), [_load_label(load) for load in data.loads])
        axes.grid(axis="y", which="major", linewidth=0.3)
        axes.legend(fontsize=7, ncols=2, loc="upper left", title="ceiling = 1 (dashed)")
    output = io.BytesIO()
    figure.savefig(output, format="png", dpi=100, metadata={"Software": None})
    return output.getvalue()


def _load_label(load: Load) -> str:
    rows, clients = load
    return f"{rows} row{'s' * (rows != 1)} x {clients} client{'s' * (clients != 1)}"


def write_chart(document: Mapping[str, Any], path: Path) -> None:
    """Draw the document's chart into ``path`` (written whole, or not at all)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, render_png(chart_data(document)))
