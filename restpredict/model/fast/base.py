"""What every fast path is: a fitted estimator's own arithmetic without scikit-learn's overhead.

A fast path reads the fitted arrays (tree nodes, coefficients, scaler statistics) and runs the
same NumPy/Cython routines scikit-learn's ``predict`` runs, minus what surrounds them per call:
input validation (restpredict has validated already), configuration contexts, joblib dispatch and
DataFrame checks. Each one states how exact it is, and is verified against scikit-learn at load.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar, Token
from typing import Any, Literal

import numpy as np

__all__ = [
    "Exactness",
    "FastEstimator",
    "FastStep",
    "check_finite",
    "computed_rows",
    "float32_rows",
    "received_finite",
    "refuse_non_finite",
]

#: ``bit-identical``: the same operations in the same order, compared with ``np.array_equal``;
#: ``1e-12``: the same formula where summation order may differ, compared within that much.
Exactness = Literal["bit-identical", "1e-12"]


class FastStep:
    """A fitted transformer's ``transform``, on validated float64 rows."""

    exactness: Exactness = "bit-identical"
    #: The scikit-learn class it stands for, as /metadata shows it.
    name = ""

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The transformed rows, as scikit-learn's ``transform`` returns them."""
        raise NotImplementedError


class FastEstimator:
    """``predict``/``predict_proba`` of a fitted estimator; any other attribute from the original.

    It stands in for the estimator inside restpredict's LoadedModel (as the ONNX backend's does),
    so everything that reads the fitted estimator (``classes_``, ``feature_names_in_``) keeps
    working. It takes the validated NumPy rows as they are, never a DataFrame.
    """

    takes_arrays = True
    restpredict_backend = "fast"
    exactness: Exactness = "bit-identical"
    #: The estimator family, as /metadata shows it (``forest``, ``linear``, ``pipeline``).
    family = ""
    #: Its cost is a few passes over the rows (scaling, one matrix product), not work per row:
    #: a big batch runs faster in slices that stay in the CPU cache (``restpredict.batch``
    #: slices them). Trees and boosting pay a per-call cost that slicing would multiply.
    memory_bound = False

    def __init__(self, original: Any) -> None:
        self.original = original
        # Fitted on a DataFrame, scikit-learn gets restpredict's rows as one: pandas hands the
        # values over column-major, and a matrix product's last bits depend on that layout.
        self._column_major = hasattr(original, "feature_names_in_")

    def as_scikit_learn_sees(self, X: np.ndarray) -> np.ndarray:
        """The rows in the memory layout scikit-learn's own ``predict`` would receive."""
        return np.asfortranarray(X) if self._column_major else X

    @property
    def fast_path(self) -> str:
        """One line for /metadata and the start-up panel: family and exactness."""
        return f"{self.family} ({self.exactness})"

    def predict(self, X: np.ndarray) -> Any:
        """Labels (classifiers) or values (regressors), as scikit-learn's ``predict`` returns."""
        raise NotImplementedError

    def predict_proba(self, X: np.ndarray) -> Any:
        """Class probabilities, as scikit-learn's ``predict_proba`` returns them."""
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        if name == "original":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.original, name)


#: Whether the rows a fast path is handed are known to hold only finite values. Batch scoring
#: validates every value before predicting (and names the row and feature of a bad one), so
#: the fast path need not scan the same rows again; rows a fast path computes itself (a
#: scaler's output, which finite input can overflow) are always checked.
_KNOWN_FINITE: ContextVar[bool] = ContextVar("restpredict_known_finite", default=False)


class _Finiteness:
    """``with``: the rows handed on from here are known finite, or not (see ``_KNOWN_FINITE``).

    A class rather than ``contextlib.contextmanager``: batch scoring enters one per pipeline
    call.
    """

    def __init__(self, known: bool) -> None:
        self._known = known
        self._token: Token[bool] | None = None

    def __enter__(self) -> None:
        self._token = _KNOWN_FINITE.set(self._known)

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _KNOWN_FINITE.reset(self._token)


def received_finite() -> _Finiteness:
    """Within: the rows given to the model were all found finite (batch scoring's validation)."""
    return _Finiteness(True)


_UNCHANGED: contextlib.AbstractContextManager[None] = contextlib.nullcontext()


def computed_rows() -> contextlib.AbstractContextManager[None]:
    """Within: the rows handed on were computed by a step, so their checks run again."""
    # Serving never sets the flag: nothing to clear, on a path that counts microseconds.
    return _Finiteness(False) if _KNOWN_FINITE.get() else _UNCHANGED


def check_finite(X: np.ndarray, *, allow_nan: bool) -> None:
    """Refuse non-finite rows as scikit-learn does, unless they were found finite already."""
    if not _KNOWN_FINITE.get() and not np.isfinite(X).all():
        refuse_non_finite(X, allow_nan=allow_nan)


def float32_rows(X: np.ndarray, *, allow_nan: bool) -> np.ndarray:
    """Rows as C-contiguous float32, refusing what scikit-learn's trees refuse.

    Trees compare float32 inputs with float64 thresholds; scikit-learn converts with
    ``astype`` and then rejects values that overflowed to infinity, and NaN unless the tree
    takes missing values; so does this, with scikit-learn's messages. The check runs even on
    rows known finite (``received_finite``): finite float64 values can overflow float32.
    """
    with np.errstate(over="ignore"):  # reported below as the error scikit-learn raises
        rows = np.ascontiguousarray(X, dtype=np.float32)
    if not np.isfinite(rows).all():
        refuse_non_finite(rows, allow_nan=allow_nan)
    return rows


def refuse_non_finite(X: np.ndarray, *, allow_nan: bool) -> None:
    """Raise scikit-learn's ValueError for infinity, and for NaN unless ``allow_nan``."""
    if np.isinf(X).any():
        raise ValueError(
            f"Input X contains infinity or a value too large for dtype('{X.dtype.name}')."
        )
    if not allow_nan and np.isnan(X).any():
        raise ValueError("Input X contains NaN.")
