"""Which fast path, if any, stands in for a fitted estimator; and how its answers are judged."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import sklearn

from restpredict.model.fast.base import Exactness, FastEstimator

__all__ = ["VERIFIED_SKLEARN", "differences", "find_fast_path", "unverified_version"]

#: The scikit-learn release series whose internals the fast paths were checked against
#: (``predict`` code read and answers compared). Another series falls back to scikit-learn.
VERIFIED_SKLEARN = "1.9"


def unverified_version() -> str | None:
    """Why the running scikit-learn is not one the fast paths were verified for; else None."""
    running = ".".join(str(sklearn.__version__).split(".")[:2])
    if running == VERIFIED_SKLEARN:
        return None
    return f"scikit-learn {sklearn.__version__} is not the verified {VERIFIED_SKLEARN}.x series"


def find_fast_path(estimator: Any) -> FastEstimator | None:
    """The fast path for ``estimator``: its own family's, or a pipeline's; else None."""
    found = _final(estimator)
    if found is None and "sklearn.pipeline" in sys.modules:
        # Lazy imports, for start-up time: see ``_final``.
        from restpredict.model.fast.pipeline import fast_pipeline
        from restpredict.model.fast.preprocessing import fast_step

        found = fast_pipeline(estimator, _final, fast_step)
    return found


def differences(expected: Any, got: Any, exactness: Exactness) -> str | None:
    """None if ``got`` is ``expected`` (bit for bit, or within 1e-12); else what differed."""
    if isinstance(expected, list) != isinstance(got, list):
        return "outputs differ in kind"
    if isinstance(expected, list):
        if len(expected) != len(got):
            return "outputs differ in number"
        for e, g in zip(expected, got):
            found = differences(e, g, exactness)
            if found is not None:
                return found
        return None
    expected, got = np.asarray(expected), np.asarray(got)
    if expected.shape != got.shape or expected.dtype.kind != got.dtype.kind:
        return f"shape/dtype {got.shape} {got.dtype} instead of {expected.shape} {expected.dtype}"
    if expected.dtype.kind not in "fc" or exactness == "bit-identical":
        differ = int(np.count_nonzero(expected != got))
        return f"{differ} of {expected.size} values differ" if differ else None
    error = float(np.max(np.abs(expected - got), initial=0))
    return f"values differ by up to {error:.3g} (allowed 1e-12)" if error > 1e-12 else None


def _final(estimator: Any) -> FastEstimator | None:
    """The family's fast path, importing only families whose scikit-learn module is loaded.

    Lazy imports, for start-up time: each family imports the scikit-learn module of the classes
    it serves, and a model can only be one of those classes once that module is imported (by
    unpickling it). Importing ``sklearn.ensemble`` for a logistic regression cost ~50 ms.
    """
    loaded = sys.modules
    if "sklearn.tree" in loaded:  # trees, and forests (sklearn.ensemble imports sklearn.tree)
        from restpredict.model.fast.trees import fast_trees

        if (found := fast_trees(estimator)) is not None:
            return found
    if "sklearn.linear_model" in loaded or "sklearn.svm" in loaded:
        from restpredict.model.fast.linear import fast_linear

        if (found := fast_linear(estimator)) is not None:
            return found
    if "sklearn.ensemble" in loaded:
        from restpredict.model.fast.boosting import fast_boosting

        return fast_boosting(estimator)
    return None
