"""Each cell against the baselines' cells measured in the same run for the same load."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.models import NO_MODEL
from benchmarks.types import Cell

CEILING = "ceiling"
NAIVE = "naive"


def baseline_cell(cells: Sequence[Cell], cell: Cell, baseline: str) -> Cell | None:
    """The ``baseline`` target's cell with the same rows, concurrency and model.

    The ceiling serves no model, so its one cell per load stands for every model.
    """
    for other in cells:
        if (
            other.target == baseline
            and other.rows == cell.rows
            and other.concurrency == cell.concurrency
            and other.model in (cell.model, NO_MODEL)
        ):
            return other
    return None


def throughput_ratio(cells: Sequence[Cell], cell: Cell, baseline: str) -> float | None:
    """``cell``'s req/s over the baseline's, or None without a (non-zero) baseline."""
    other = baseline_cell(cells, cell, baseline)
    if other is None or other.load.requests_per_s == 0:
        return None
    return cell.load.requests_per_s / other.load.requests_per_s
