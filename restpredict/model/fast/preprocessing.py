"""Pipeline fronts: StandardScaler, MinMaxScaler and a numeric SimpleImputer on float64 rows.

(Encoders, string imputers and column transformers are in ``columns``.)

Each does scikit-learn's ``transform`` arithmetic on a fresh float64 array (``X - mean_`` then
``/= scale_``; ``* scale_`` then ``+= min_`` and the optional clip; missing values replaced by
the learned statistics, columns learned empty dropped), element by element as scikit-learn
does, so the output is bit-identical.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from restpredict.model.fast.base import FastStep, check_finite

__all__ = ["fast_step"]


def fast_step(transformer: Any) -> FastStep | None:
    """The fast ``transform`` of a fitted transformer of exactly these classes; else None.

    A transformer set to output DataFrames (``set_output``) stays with scikit-learn.
    """
    if getattr(transformer, "_sklearn_output_config", {}).get("transform", "default") not in (
        "default",
        None,
    ):
        return None
    # The classes are looked up where the model's unpickling imported them, not imported here:
    # importing sklearn.impute for a model without an imputer cost ~25 ms of start-up.
    kind = type(transformer)
    scaling = sys.modules.get("sklearn.preprocessing")
    if scaling is not None and kind is scaling.StandardScaler:
        return _Standard(transformer)
    if scaling is not None and kind is scaling.MinMaxScaler:
        return _MinMax(transformer)
    impute = sys.modules.get("sklearn.impute")
    if impute is not None and kind is impute.SimpleImputer:
        found = _imputer(transformer)
        if found is not None:
            return found
    # Lazy import, for start-up time: only a model with such a front needs it.
    from restpredict.model.fast.columns import fast_column_step

    return fast_column_step(transformer, fast_step)


class _Standard(FastStep):
    name = "StandardScaler"

    def __init__(self, scaler: Any) -> None:
        self._mean = scaler.mean_ if scaler.with_mean else None
        self._scale = scaler.scale_ if scaler.with_std else None

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = _checked(X)
        if self._mean is not None:
            out -= self._mean
        if self._scale is not None:
            out /= self._scale
        return out


class _MinMax(FastStep):
    name = "MinMaxScaler"

    def __init__(self, scaler: Any) -> None:
        self._scale = scaler.scale_
        self._min = scaler.min_
        self._clip = (scaler.feature_range[0], scaler.feature_range[1]) if scaler.clip else None

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = _checked(X)
        out *= self._scale
        out += self._min
        if self._clip is not None:
            np.clip(out, self._clip[0], self._clip[1], out=out)
        return out


def _imputer(imputer: Any) -> FastStep | None:
    """Only NaN-marked missing values with numeric statistics and no indicator columns."""
    missing = imputer.missing_values
    statistics = np.asarray(imputer.statistics_)
    if (
        not (isinstance(missing, float) and np.isnan(missing))
        or statistics.dtype.kind != "f"
        or imputer.add_indicator
    ):
        return None
    return _Imputer(statistics, keep_empty=bool(imputer.keep_empty_features))


class _Imputer(FastStep):
    name = "SimpleImputer"

    def __init__(self, statistics: np.ndarray, *, keep_empty: bool) -> None:
        valid = np.ones(statistics.shape, dtype=bool) if keep_empty else ~np.isnan(statistics)
        self._columns = None if valid.all() else np.flatnonzero(valid)
        self._fill = statistics if self._columns is None else statistics[self._columns]

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = _checked(X)
        if self._columns is not None:
            out = out[:, self._columns]
        missing = np.isnan(out)
        if missing.any():
            out = np.where(missing, self._fill, out)
        return out


def _checked(X: np.ndarray) -> np.ndarray:
    """A float64 copy; infinity refused as scikit-learn does, NaN passed on (these take it)."""
    out = np.array(X, dtype=np.float64)
    check_finite(out, allow_nan=True)
    return out
