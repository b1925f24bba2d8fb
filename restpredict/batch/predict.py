"""Predict a validated batch; rows the model itself refuses are found by halving the batch.

A model whose cost is passes over memory (a linear model and its scaler on the fast path) is
called on cache-sized slices of the batch: each pass then reads the cache instead of memory.
The benchmark's logistic-regression pipeline took 1.7-2.4x less CPU time per row in 4,096- to
8,192-row slices than in one call on a 65,536-row batch. Other models get the batch in one
call (a forest or histogram boosting pays a per-call cost that slicing would multiply).

Validation cannot know every value a model refuses (an encoder's unknown category, inputs that
overflow it), and the server answers those with a 422 for the whole request. A batch is many
requests' worth of rows, so one such row must not sink the others, nor be dropped unnamed: the
batch is split in two until each refused row stands alone, which costs about two ``predict``
calls per level for each bad row instead of one call per row.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from restpredict.batch.readers import Piece
from restpredict.batch.validate import Checked, Reject
from restpredict.errors import InputError
from restpredict.model.fast.base import received_finite
from restpredict.model.loading import LoadedModel, Prediction

__all__ = ["Scored", "Work", "predict_rows", "rows_per_call"]

#: The model input per call of a memory-bound model: 1 MiB, the L2 cache of a core of the
#: benchmark machine (4,369 rows of 30 float64 features); slices of 0.5-2 MiB measured alike.
_SLICE_BYTES = 1 << 20


@dataclass
class Work:
    """One piece after validation, waiting for its predictions."""

    piece: Piece
    checked: Checked
    kept: pa.RecordBatch | None

    @property
    def row_numbers(self) -> np.ndarray:
        """The input row number of each row sent to the model."""
        valid = self.checked.valid
        offsets = np.arange(len(self.piece)) if valid is None else np.flatnonzero(valid)
        return np.asarray(self.piece.first_row + offsets, dtype=np.int64)


@dataclass
class Scored:
    """The model's answers for the accepted rows, and the rows it refused."""

    prediction: Prediction
    accepted: np.ndarray | None = None  # mask over the input rows; None when all were accepted
    rejects: list[Reject] = field(default_factory=list)


def predict_rows(
    model: LoadedModel,
    rows: np.ndarray,
    row_numbers: np.ndarray,
    *,
    proba: bool,
    finite: bool = False,
) -> Scored:
    """Labels (and probabilities with ``proba``) for ``rows``, numbered for error messages.

    ``finite`` says validation saw every value finite, so a fast path does not scan the matrix
    again (``received_finite``): a second full pass over each batch otherwise. scikit-learn
    itself is not told (its ``assume_finite`` would skip every check, also of what a pipeline
    computes: a scaler's overflow to infinity then got a label where ``/predict`` refuses it).
    """
    step = rows_per_call(model, rows)
    if step < len(rows):
        return _joined(
            [
                _predict(model, rows[i : i + step], row_numbers[i : i + step], proba, finite)
                for i in range(0, len(rows), step)
            ]
        )
    return _predict(model, rows, row_numbers, proba, finite)


def rows_per_call(model: LoadedModel, rows: np.ndarray) -> int:
    """How many rows go to the model at once: a cache-sized slice if it is memory-bound."""
    if not getattr(model.estimator, "memory_bound", False) or rows.ndim != 2:
        return max(len(rows), 1)
    return max(256, _SLICE_BYTES // max(int(rows.shape[1]) * rows.itemsize, 1))


def _predict(
    model: LoadedModel, rows: np.ndarray, row_numbers: np.ndarray, proba: bool, finite: bool
) -> Scored:
    """One call, halving on a refusal (see the module docstring)."""
    try:
        with _scanned(finite):
            return Scored(model.predict(rows, proba=proba))
    except InputError as exc:
        if exc.code == "proba_unavailable":
            raise
        if len(rows) == 1:
            reason = exc.detail
            empty = Prediction(
                labels=np.empty(0, dtype=object), proba=np.empty((0, 0)) if proba else None
            )
            return Scored(empty, np.zeros(1, dtype=bool), [Reject(int(row_numbers[0]), reason)])
    half = len(rows) // 2
    parts = [
        _predict(model, rows[:half], row_numbers[:half], proba, finite),
        _predict(model, rows[half:], row_numbers[half:], proba, finite),
    ]
    return _joined(parts)


def _scanned(finite: bool) -> contextlib.AbstractContextManager[None]:
    """Within: a fast path does not scan rows validation found finite (when ``finite``)."""
    return received_finite() if finite else contextlib.nullcontext()


def _joined(parts: list[Scored]) -> Scored:
    """The parts' answers in order; ``accepted`` stays None when every part took every row."""
    accepted: np.ndarray | None = None
    if any(p.accepted is not None for p in parts):
        accepted = np.concatenate(
            [p.accepted if p.accepted is not None else _all(p) for p in parts]
        )
    kept = [p.prediction for p in parts if _count(p) > 0]
    labels = [p.labels for p in kept if p.labels is not None]
    probas = [p.proba for p in kept if p.proba is not None]
    prediction = Prediction(
        labels=np.concatenate(labels) if labels else parts[0].prediction.labels,
        proba=np.concatenate(probas) if probas else parts[0].prediction.proba,
    )
    return Scored(prediction, accepted, [r for p in parts for r in p.rejects])


def _count(part: Scored) -> int:
    out = part.prediction.labels if part.prediction.labels is not None else part.prediction.proba
    return 0 if out is None else len(out)


def _all(part: Scored) -> np.ndarray:
    return np.ones(_count(part), dtype=bool)
