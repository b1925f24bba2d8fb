"""Predict a validated batch; rows the model itself refuses are found by halving the batch.

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
import sklearn

from restpredict.batch.readers import Piece
from restpredict.batch.validate import Checked, Reject
from restpredict.errors import InputError
from restpredict.model.loading import LoadedModel, Prediction

__all__ = ["Scored", "Work", "predict_rows"]


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

    ``finite`` says validation saw every value finite, so scikit-learn need not scan the
    matrix again (``assume_finite``): a second full pass over each batch otherwise.
    """
    skip_scan = sklearn.config_context(assume_finite=True) if finite else contextlib.nullcontext()
    try:
        with skip_scan:
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
        predict_rows(model, rows[:half], row_numbers[:half], proba=proba, finite=finite),
        predict_rows(model, rows[half:], row_numbers[half:], proba=proba, finite=finite),
    ]
    return _joined(parts)


def _joined(parts: list[Scored]) -> Scored:
    accepted = np.concatenate([p.accepted if p.accepted is not None else _all(p) for p in parts])
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
