"""Exact fast paths: scikit-learn's own arithmetic on a fitted estimator, minus the overhead.

One module per family (``trees``, ``linear``, ``boosting``, ``preprocessing``, ``columns`` and
``pipeline``, on ``base``); ``select`` picks the one that fits and judges its answers against
scikit-learn's; ``probe`` makes the rows that judging (and the ONNX backend's) runs on. This
package needs only NumPy and scikit-learn (SciPy's ``expit``, which scikit-learn itself uses).
"""

from __future__ import annotations

from restpredict.model.fast.base import Exactness, FastEstimator, FastStep
from restpredict.model.fast.probe import sample_rows
from restpredict.model.fast.select import (
    VERIFIED_SKLEARN,
    differences,
    find_fast_path,
    unverified_version,
)

__all__ = [
    "VERIFIED_SKLEARN",
    "Exactness",
    "FastEstimator",
    "FastStep",
    "differences",
    "find_fast_path",
    "sample_rows",
    "unverified_version",
]
