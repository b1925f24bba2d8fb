"""Pipelines: the fast steps at the front run fast, the rest is handed to scikit-learn.

``Pipeline.predict`` is each transformer's ``transform`` in turn, then the final estimator's
``predict``. Here the leading transformers with a fast ``transform`` run as such; the final
estimator runs on its fast path when it has one, else the remaining steps run as a scikit-learn
``Pipeline`` slice, on the array the fast steps produced (what scikit-learn's own transformers
would have passed on).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from restpredict.model.fast.base import FastEstimator, FastStep, computed_rows

__all__ = ["FastPipeline", "fast_pipeline"]

Finder = Callable[[Any], FastEstimator | None]


def fast_pipeline(
    pipeline: Any, final: Finder, step: Callable[[Any], FastStep | None]
) -> FastEstimator | None:
    """A pipeline whose first step, at least, is fast; else None."""
    if type(pipeline) is not Pipeline:
        return None
    steps = [s for _, s in pipeline.steps if s not in (None, "passthrough")]
    front: list[FastStep] = []
    for transformer in steps[:-1]:
        fast = step(transformer)
        if fast is None:
            break
        front.append(fast)
    rest = steps[len(front) :]
    tail: Any = final(rest[0]) if len(rest) == 1 else None
    if tail is None and not front:
        return None
    if tail is None:
        tail = rest[0] if len(rest) == 1 else Pipeline([(str(i), s) for i, s in enumerate(rest)])
    return FastPipeline(pipeline, front, tail)


class FastPipeline(FastEstimator):
    """Fast transforms, then a fast final estimator or scikit-learn for the rest."""

    family = "pipeline"

    def __init__(self, original: Any, front: list[FastStep], tail: Any) -> None:
        super().__init__(original)
        self._front = front
        self._tail = tail
        parts = [s.name for s in front]
        if isinstance(tail, FastEstimator):
            parts.append(tail.family)
            exactness = [s.exactness for s in front] + [tail.exactness]
        else:
            parts.append("scikit-learn")
            exactness = [s.exactness for s in front]
        self.exactness = "bit-identical" if set(exactness) == {"bit-identical"} else "1e-12"
        self.family = "pipeline: " + ", ".join(parts)
        # Scaler/imputer fronts are elementwise passes too: memory-bound when the tail is.
        self.memory_bound = bool(getattr(tail, "memory_bound", False))

    def predict(self, X: np.ndarray) -> Any:
        """The final estimator's ``predict`` on the transformed rows."""
        return self._through(X, "predict")

    def predict_proba(self, X: np.ndarray) -> Any:
        """The final estimator's ``predict_proba`` on the transformed rows."""
        return self._through(X, "predict_proba")

    def _through(self, X: np.ndarray, method: str) -> Any:
        rows = self.as_scikit_learn_sees(X)
        if not self._front:
            return getattr(self._tail, method)(rows)
        rows = self._front[0].transform(rows)
        # What the first step computed can overflow even from finite rows: checked again.
        with computed_rows():
            for step in self._front[1:]:
                rows = step.transform(rows)
            return getattr(self._tail, method)(rows)
