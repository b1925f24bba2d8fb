"""Rows that probe a model where its decisions change, for checking a backend against it.

Shared by every backend that must answer like scikit-learn (the ONNX backend and the fast
paths): a backend that agrees on random rows can still disagree at a split threshold, where
float32 and float64 comparisons part ways, so half the rows land right at thresholds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sample_rows", "tree_structures"]

SAMPLE_ROWS = 512


def sample_rows(estimator: Any, width: int, n: int = SAMPLE_ROWS, seed: int = 0) -> np.ndarray:
    """Rows spread where the model's decisions change: around split thresholds and scaler means.

    Per feature, half the values are a split threshold nudged to either side, some by less than
    float32 rounding (where float32 and float64 comparisons disagree); the rest are drawn from
    the feature's learned location and scale (StandardScaler/MinMaxScaler statistics, else the
    thresholds' range).
    """
    rng = np.random.default_rng(seed)
    thresholds = _thresholds(estimator, width)
    location, scale = _location_scale(estimator, width, thresholds)
    rows = rng.normal(location, scale, size=(n, width))
    for j, values in enumerate(thresholds):
        if values.size:
            picks = rng.choice(values, size=n // 2)
            # 1e-9 lies within float32 rounding of the threshold, 1e-3 clearly to one side.
            nudge = rng.choice([-1e-9, 1e-9, -1e-7, 1e-7, -1e-3, 1e-3], size=n // 2)
            rows[: n // 2, j] = picks + nudge * np.maximum(np.abs(picks), 1.0)
    return rows


def tree_structures(estimator: Any) -> list[Any]:
    """The fitted ``tree_`` structures of a tree or forest (or a pipeline's last step), in order."""
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    members = getattr(final, "estimators_", None)
    if members is None:
        members = [final]
    flat = np.ravel(np.asarray(members, dtype=object))
    return [tree.tree_ for tree in flat if hasattr(tree, "tree_")]


def _thresholds(estimator: Any, width: int) -> list[np.ndarray]:
    """Every split threshold of every tree in the estimator, per feature."""
    found: list[list[np.ndarray]] = [[] for _ in range(width)]
    for tree in tree_structures(estimator):
        for j in range(width):
            found[j].append(tree.threshold[tree.feature == j])
    return [np.concatenate(f) if f else np.empty(0) for f in found]


def _location_scale(
    estimator: Any, width: int, thresholds: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    first = estimator.steps[0][1] if hasattr(estimator, "steps") else estimator
    if hasattr(first, "mean_") and hasattr(first, "scale_") and first.mean_ is not None:
        scale = first.scale_ if first.scale_ is not None else np.ones(width)
        return np.asarray(first.mean_, dtype=float), np.asarray(scale, dtype=float) + 1e-12
    if hasattr(first, "data_min_") and hasattr(first, "data_max_"):
        low, high = np.asarray(first.data_min_, float), np.asarray(first.data_max_, float)
        return (low + high) / 2, (high - low) / 2 + 1e-12
    location, scale = np.zeros(width), np.ones(width)
    for j, values in enumerate(thresholds):
        if values.size:
            location[j] = values.mean()
            scale[j] = values.std() + 1e-12 or 1.0
    return location, scale
