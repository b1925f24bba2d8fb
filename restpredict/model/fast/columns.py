"""Fronts with string columns: OneHotEncoder, a string SimpleImputer and a ColumnTransformer.

A model fitted on a data frame gets its rows from restpredict as an object array (numbers and
strings, in ``feature_names_in_`` order), where scikit-learn would get a pandas DataFrame. These
steps compute, on that array, what scikit-learn's ``transform`` computes on the DataFrame:

- pandas turns a missing value of a string column into NaN when the column holds at least one
  string in the batch, and keeps ``None`` otherwise; the steps see the same values;
- ``OneHotEncoder``: each value's index in ``categories_`` (a dict lookup where scikit-learn
  searches), unknown values refused (``handle_unknown="error"``, with scikit-learn's own
  message) or encoded as zeros, the ``drop`` columns removed; a dense ``dtype`` array;
- ``ColumnTransformer``: each transformer on its columns (numbers as float64, in the memory
  layout pandas hands over), ``drop`` and ``passthrough`` (of numbers), then ``np.hstack``.

Every number is computed as scikit-learn computes it. Where scikit-learn would pass a sparse
matrix on (``sparse_output``), these pass the same values dense: a following tree decides the
same, but a following matrix product sums in another order, so such a step is ``1e-12``.
Configurations not covered (infrequent categories, transformer weights, data-frame output,
other transformers) are left to scikit-learn.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from restpredict.model.fast.base import Exactness, FastStep, computed_rows

__all__ = ["fast_column_step"]

StepFinder = Callable[[Any], FastStep | None]


def fast_column_step(transformer: Any, step: StepFinder) -> FastStep | None:
    """The fast ``transform`` of a fitted encoder, string imputer or column transformer."""
    kind = type(transformer)
    encoders = sys.modules.get("sklearn.preprocessing")
    if encoders is not None and kind is encoders.OneHotEncoder:
        return _one_hot(transformer)
    impute = sys.modules.get("sklearn.impute")
    if impute is not None and kind is impute.SimpleImputer:
        return _string_imputer(transformer)
    compose = sys.modules.get("sklearn.compose")
    if compose is not None and kind is compose.ColumnTransformer:
        return _column_transformer(transformer, step)
    return None


def as_pandas_gives(column: np.ndarray) -> np.ndarray:
    """A string column's values as a DataFrame built from them hands them to scikit-learn.

    pandas infers its string dtype for a column with at least one string, and that dtype keeps
    a missing value as NaN; a column of missing values only stays ``object``, ``None`` and all.
    """
    if not any(value is None for value in column):
        return column
    if not any(isinstance(value, str) for value in column):
        return column
    out = column.copy()
    out[[value is None for value in column]] = math.nan
    return out


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


# --- OneHotEncoder ------------------------------------------------------------------------


def _one_hot(encoder: Any) -> FastStep | None:
    """Known categories without infrequent grouping, ``handle_unknown`` that does not warn."""
    if getattr(encoder, "_infrequent_enabled", True) or encoder.handle_unknown == "warn":
        return None
    if encoder.handle_unknown not in ("error", "ignore", "infrequent_if_exist"):
        return None
    return _OneHot(encoder)


class _OneHot(FastStep):
    name = "OneHotEncoder"

    def __init__(self, encoder: Any) -> None:
        self._encoder = encoder
        self._tables = [_lookup(np.asarray(c)) for c in encoder.categories_]
        self._refuse_unknown = encoder.handle_unknown == "error"
        drop = encoder._drop_idx_after_grouping
        self._drop = None if drop is None else [None if d is None else int(d) for d in drop]
        widths = [int(n) for n in encoder._n_features_outs]
        self._starts = np.cumsum([0, *widths[:-1]]).astype(np.intp)
        self._width = sum(widths)
        self._dtype = encoder.dtype
        if encoder.sparse_output:
            self.exactness = "1e-12"

    def transform(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        out = np.zeros((n, self._width), dtype=self._dtype)
        rows = np.arange(n)
        for i, (table, nan_index) in enumerate(self._tables):
            column = as_pandas_gives(X[:, i])
            codes = np.fromiter(
                (_code(table, nan_index, value) for value in column), dtype=np.intp, count=n
            )
            known = codes >= 0
            if self._refuse_unknown and not known.all():
                self._refuse(column, i)
            dropped = self._drop[i] if self._drop is not None else None
            if dropped is not None:
                known &= codes != dropped
                codes[codes > dropped] -= 1
            out[rows[known], self._starts[i] + codes[known]] = 1
        return out

    def _refuse(self, column: np.ndarray, i: int) -> None:
        """scikit-learn's own ValueError, its unknown values listed as scikit-learn lists them."""
        from sklearn.utils._encode import _check_unknown

        values = column.astype(object) if column.dtype.kind != "O" else column
        diff = _check_unknown(values, self._encoder.categories_[i])
        raise ValueError(f"Found unknown categories {diff} in column {i} during transform")


def _lookup(categories: np.ndarray) -> tuple[dict[Any, int], int]:
    """Category -> index (``None`` included when it is one), and NaN's index (-1 if none)."""
    table: dict[Any, int] = {}
    nan_index = -1
    for index, value in enumerate(categories.tolist()):
        if _is_nan(value):
            nan_index = index
        else:
            table[value] = index
    return table, nan_index


def _code(table: dict[Any, int], nan_index: int, value: Any) -> int:
    if _is_nan(value):
        return nan_index
    try:
        return table.get(value, -1)
    except TypeError:  # unhashable: not a category
        return -1


# --- SimpleImputer of strings ---------------------------------------------------------------


def _string_imputer(imputer: Any) -> FastStep | None:
    """NaN-marked missing strings filled with learned strings, no indicator columns."""
    missing = imputer.missing_values
    statistics = np.asarray(imputer.statistics_)
    if (
        not (isinstance(missing, float) and math.isnan(missing))
        or statistics.dtype.kind != "O"
        or imputer.add_indicator
        or not all(isinstance(s, str) for s in statistics.tolist())
    ):
        return None
    return _StringImputer(statistics)


class _StringImputer(FastStep):
    name = "SimpleImputer"

    def __init__(self, statistics: np.ndarray) -> None:
        self._fill = statistics.tolist()

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = np.empty(X.shape, dtype=object)
        for i, fill in enumerate(self._fill):
            column = as_pandas_gives(X[:, i])
            out[:, i] = [fill if _is_nan(value) else value for value in column]
        return out


# --- ColumnTransformer ---------------------------------------------------------------------


def _column_transformer(ct: Any, step: StepFinder) -> FastStep | None:
    """Every transformer fast (or drop, or passthrough of numbers); else None."""
    if ct.transformer_weights:
        return None
    from sklearn.compose._column_transformer import _is_empty_column_selection

    parts: list[_Part] = []
    for name, transformer, columns in ct.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        if _is_empty_column_selection(columns):
            continue
        indices = np.asarray(ct._transformer_to_input_indices[name], dtype=np.intp)
        steps = _part_steps(transformer, step)
        if steps is None or indices.size == 0:
            return None
        parts.append(_Part(indices, steps))
    if not parts:
        return None
    return _Columns(parts, frame=hasattr(ct, "feature_names_in_"), sparse=ct.sparse_output_)


def _part_steps(transformer: Any, step: StepFinder) -> list[FastStep] | None:
    """One transformer (or a pipeline of them) as fast steps; [] for a passthrough."""
    if _is_passthrough(transformer):
        return []
    inner = getattr(transformer, "steps", None)
    members = [s for _, s in inner] if inner is not None else [transformer]
    if inner is not None and type(transformer).__name__ != "Pipeline":
        return None
    found = []
    for member in members:
        if member is None or (isinstance(member, str) and member == "passthrough"):
            continue
        fast = step(member)
        if fast is None:
            return None
        found.append(fast)
    return found


def _is_passthrough(transformer: Any) -> bool:
    """``passthrough``, as a fitted ColumnTransformer holds it: an identity FunctionTransformer."""
    functions = sys.modules.get("sklearn.preprocessing")
    return (
        functions is not None
        and type(transformer) is functions.FunctionTransformer
        and transformer.func is None
        and not transformer.validate
        and getattr(transformer, "_sklearn_output_config", {}).get("transform") in (None, "default")
    )


class _Part:
    """One transformer's input columns and its fast steps."""

    def __init__(self, columns: np.ndarray, steps: list[FastStep]) -> None:
        self.columns = columns
        self.steps = steps
        #: Encoders and string imputers take the values as they are; the rest take numbers.
        self.strings = bool(steps) and isinstance(steps[0], (_OneHot, _StringImputer))


class _Columns(FastStep):
    name = "ColumnTransformer"

    def __init__(self, parts: list[_Part], *, frame: bool, sparse: bool) -> None:
        self._parts = parts
        self._frame = frame
        # An encoder's own sparse output is made dense here before anything uses it.
        inner = {s.exactness for p in parts for s in p.steps if not isinstance(s, _OneHot)}
        exact: Exactness = "bit-identical" if inner <= {"bit-identical"} else "1e-12"
        self.exactness = "1e-12" if sparse else exact
        names = {s.name for p in parts for s in p.steps}
        if any(not p.steps for p in parts):
            names.add("passthrough")
        self.name = f"ColumnTransformer({', '.join(sorted(names))})"

    def transform(self, X: np.ndarray) -> np.ndarray:
        outputs = [self._part(part, X) for part in self._parts]
        return np.hstack(outputs)

    def _part(self, part: _Part, X: np.ndarray) -> np.ndarray:
        if part.strings:
            out = X[:, part.columns]
        else:
            # Numbers as scikit-learn gets them: float64, column-major from a DataFrame.
            out = X[:, part.columns].astype(np.float64)
            out = np.asfortranarray(out) if self._frame else np.ascontiguousarray(out)
        if part.steps:
            out = part.steps[0].transform(out)
            with computed_rows():  # a later step's input may have overflowed: checked again
                for step in part.steps[1:]:
                    out = step.transform(out)
        if out.dtype.kind == "O":
            raise ValueError("a ColumnTransformer passes strings on")  # refused at load
        return out
