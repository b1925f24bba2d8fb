"""The server's input rules applied to tables: columns by name, then every value, row by row.

``/predict`` refuses a row whose numeric feature is not a finite number (null, NaN, infinity,
text, a boolean) or whose string feature is not a string, and a request whose columns do not
fit the model. Here the same rules run vectorised over an Arrow record batch, so that a bad row
is found by its number without turning millions of rows into Python objects; rows read from
JSON, which may mix types in a column, go through the server's own ``rows_to_query``. Both
build the model input exactly as the server does: a float64 matrix for numeric models, an
object matrix for models with string columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from restpredict.codecs.payload import Row, rows_to_query
from restpredict.errors import InputError
from restpredict.model.schema import ColumnKind, ModelSchema

__all__ = ["Checked", "Layout", "Reject", "check_batch", "check_rows", "plan_layout"]


@dataclass(frozen=True)
class Reject:
    """One input row the model cannot take: its number (from 0, in input order) and why."""

    row: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


@dataclass(frozen=True)
class Layout:
    """Which input columns feed the model (in the model's order) and which are carried along."""

    features: tuple[str, ...]
    keep: tuple[str, ...] = ()


@dataclass
class Checked:
    """A batch after validation: model input for the valid rows, and the rows refused."""

    rows: np.ndarray
    valid: np.ndarray | None = None  # boolean mask over the batch; None when every row is valid
    rejects: list[Reject] = field(default_factory=list)
    finite: bool = False  # every value of ``rows`` is known to be a finite float

    def __len__(self) -> int:
        return int(self.rows.shape[0])


def plan_layout(
    columns: Sequence[str],
    schema: ModelSchema,
    *,
    keep: Sequence[str] | None = None,
    keep_all: bool = False,
    ignore_unknown: bool = False,
) -> Layout:
    """Map input columns to features: by name for DataFrame models, by position otherwise.

    Columns that are neither features nor kept are refused, as the server refuses unknown
    names (``unknown_columns: reject``), unless ``ignore_unknown``: a misspelt column should
    stop the run, not be scored without.
    """
    kept = tuple(columns) if keep_all else tuple(keep or ())
    absent = [name for name in kept if name not in columns]
    if absent:
        raise InputError(
            f"--keep-columns: no column {', '.join(map(repr, absent))} in the input "
            f"(it has: {_listing(columns)})"
        )
    names = schema.feature_names
    if names is not None:
        missing = [name for name in names if name not in columns]
        if missing:
            raise InputError(
                f"the input is missing {len(missing)} feature column(s) the model needs: "
                f"{', '.join(missing)} (it has: {_listing(columns)})",
                code="missing_columns",
            )
        unknown = [c for c in columns if c not in names and c not in kept]
        if unknown and not ignore_unknown:
            raise InputError(
                f"the input has column(s) the model does not use: {_listing(unknown)}; carry "
                "them with --keep-columns, or pass --unknown-columns ignore",
                code="unknown_columns",
            )
        return Layout(features=tuple(names), keep=kept)
    features = tuple(columns) if keep_all else tuple(c for c in columns if c not in kept)
    if schema.n_features is not None and len(features) != schema.n_features:
        raise InputError(
            f"the model takes {schema.n_features} features by position, but the input has "
            f"{len(features)} column(s) besides the kept ones ({_listing(features)}); "
            "name the others with --keep-columns",
            code="wrong_feature_count",
        )
    return Layout(features=features, keep=kept)


def check_batch(
    batch: pa.RecordBatch,
    layout: Layout,
    schema: ModelSchema,
    *,
    first_row: int = 0,
    text_numbers: bool = False,
) -> Checked:
    """Validate one record batch; ``text_numbers`` reads features held as text (CSV)."""
    if schema.numeric_only and not text_numbers:
        matrix = _finite_matrix(batch, layout.features)
        if matrix is not None:
            return Checked(rows=matrix, finite=True)
    kinds: Sequence[ColumnKind] = schema.feature_kinds or _numbers_only(len(layout.features))
    n = batch.num_rows
    bad = np.zeros(n, dtype=bool)
    reasons: dict[int, str] = {}
    columns: list[np.ndarray] = []
    for j, (name, kind) in enumerate(zip(layout.features, kinds)):
        feature = _Feature(name, j, schema)
        column = batch.column(name)
        if kind == "number":
            values, problems = _numbers(feature, column, text_numbers)
        else:
            values, problems = _strings(feature, column, text_numbers)
        for index, reason in problems:
            if not bad[index]:
                bad[index] = True
                reasons[index] = reason
        columns.append(values)
    rejects = [Reject(first_row + i, reasons[i]) for i in sorted(reasons)]
    matrix = _matrix(columns, n, schema.numeric_only)
    if not rejects:
        return Checked(rows=matrix)
    valid = ~bad
    return Checked(rows=matrix[valid], valid=valid, rejects=rejects)


def check_rows(
    rows: Sequence[Row], schema: ModelSchema, *, first_row: int = 0, ignore_unknown: bool = False
) -> Checked:
    """Validate parsed JSON rows with the server's own function; one row at a time on a fault."""
    try:
        query = rows_to_query(rows, schema, max_rows=len(rows), ignore_unknown=ignore_unknown)
    except InputError:
        pass
    else:
        return Checked(rows=query.rows)
    good: list[np.ndarray] = []
    valid = np.zeros(len(rows), dtype=bool)
    rejects = []
    for i, row in enumerate(rows):
        try:
            one = rows_to_query([row], schema, max_rows=1, ignore_unknown=ignore_unknown)
        except InputError as exc:
            rejects.append(Reject(first_row + i, _single_row_reason(exc.detail)))
            continue
        valid[i] = True
        good.append(one.rows)
    width = schema.n_features or 0
    dtype = np.float64 if schema.numeric_only else object
    matrix = np.concatenate(good) if good else np.empty((0, width), dtype=dtype)
    return Checked(rows=matrix, valid=valid, rejects=rejects)


def _single_row_reason(detail: str) -> str:
    """The server names the row in a one-row request ``row 0`` or ``instances[0]``: drop it."""
    for prefix in ("row 0, ", "instances[0].", "instances[0] "):
        if detail.startswith(prefix):
            return detail.removeprefix(prefix)
    return detail


Problems = list[tuple[int, str]]


@dataclass(frozen=True)
class _Feature:
    """One model feature, and what a missing value (null, NaN, empty CSV cell) does there."""

    name: str
    index: int
    schema: ModelSchema

    @property
    def nullable(self) -> bool:
        return self.schema.nullable(self.index)

    @property
    def missing(self) -> str:
        """The server's reason for a missing value where the model takes none."""
        return (
            f"feature {self.name!r} is missing (null), but {self.schema.estimator} does not "
            "accept missing values there; send a value"
        )

    def says(self, reason: str) -> str:
        return f"feature {self.name!r}: {reason}"


def _numbers(feature: _Feature, column: pa.Array, text: bool) -> tuple[np.ndarray, Problems]:
    """A float64 array of the column (NaN where missing), and the rows the server refuses."""
    kind = column.type
    if text and _is_text(kind):
        return _parsed_numbers(feature, column)
    if pa.types.is_null(kind):
        values = np.full(len(column), np.nan)
        return values, [] if feature.nullable else _each(len(column), feature.missing)
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
        raise InputError(
            f"column {feature.name!r} holds {kind} values; the model expects numbers",
            code="invalid_type",
        )
    values = np.asarray(
        pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
    )
    finite = np.isfinite(values)
    if finite.all():
        return values, []
    problems = []
    for i in np.flatnonzero(~finite):
        if np.isinf(values[i]):
            got = float(values[i])
            problems.append((int(i), feature.says(f"expected a finite number, got {got!r}")))
        elif not feature.nullable:  # null or NaN: a missing value
            problems.append((int(i), feature.missing))
    return values, problems


def _parsed_numbers(feature: _Feature, column: pa.Array) -> tuple[np.ndarray, Problems]:
    """CSV text, as the CLI's CSV reader reads it: a finite number, empty (missing), or the
    text itself, reported as given."""
    try:
        values = np.asarray(
            pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = None
    if values is not None and np.isfinite(values).all():
        return values, []
    texts = column.to_pylist()
    out = np.empty(len(texts), dtype=np.float64)
    problems = []
    for i, text in enumerate(texts):
        if text is None or not text.strip():
            out[i] = np.nan
            if not feature.nullable:
                problems.append((i, feature.missing))
            continue
        number = _finite_float(text)
        if number is None:
            out[i] = np.nan
            problems.append((i, feature.says(f"expected a number, got {text!r}")))
        else:
            out[i] = number
    return out, problems


def _finite_float(text: str) -> float | None:
    """The number CSV text holds, as ``float()`` reads it; None if it holds none or not finite."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _strings(feature: _Feature, column: pa.Array, text: bool) -> tuple[np.ndarray, Problems]:
    """An object array of str (the model's missing value where null), and the refused rows.

    In CSV an empty cell is a missing value, as pandas and MLflow read it.
    """
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.dictionary_decode()
        kind = column.type
    if pa.types.is_null(kind):
        values = np.full(len(column), feature.schema.missing_value(feature.index), dtype=object)
        return values, [] if feature.nullable else _each(len(column), feature.missing)
    if not _is_text(kind):
        raise InputError(
            f"column {feature.name!r} holds {kind} values; the model expects strings",
            code="invalid_type",
        )
    values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
    missing = column.is_null()
    if text:
        missing = pc.or_(missing, pc.equal(column, ""))
    if not pc.any(missing).as_py():
        return values, []
    rows = np.flatnonzero(missing.to_numpy(zero_copy_only=False))
    if feature.nullable:
        values[rows] = feature.schema.missing_value(feature.index)
        return values, []
    return values, [(int(i), feature.missing) for i in rows]


def _numbers_only(n: int) -> tuple[ColumnKind, ...]:
    number: ColumnKind = "number"
    return (number,) * n


def _is_text(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _each(n: int, reason: str) -> Problems:
    return [(i, reason) for i in range(n)]


def _finite_matrix(batch: pa.RecordBatch, features: Sequence[str]) -> np.ndarray | None:
    """The float64 matrix of a batch whose features are all finite numbers, else None.

    The common case, in one pass: float columns are viewed without a cast or copy and written
    straight into the matrix, and finiteness is checked once on the whole matrix (which a null
    fails, as NaN). None sends the batch to the column-by-column checks that name each fault.
    """
    matrix = np.empty((batch.num_rows, len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        column = batch.column(name)
        kind = column.type
        if pa.types.is_floating(kind) or (pa.types.is_integer(kind) and kind.bit_width <= 32):
            matrix[:, j] = column.to_numpy(zero_copy_only=False)
        else:
            return None
    return matrix if np.isfinite(matrix).all() else None


def _matrix(columns: list[np.ndarray], n: int, numeric: bool) -> np.ndarray:
    """The model input, shaped as the server builds it (C order, one row per input row)."""
    matrix = np.empty((n, len(columns)), dtype=np.float64 if numeric else object)
    for j, values in enumerate(columns):
        matrix[:, j] = values
    return matrix


def _listing(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
