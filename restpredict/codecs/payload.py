"""Turn request bytes into model input and predictions into response bytes. No HTTP here.

JSON is decoded by msgspec straight into typed lists (it rejects NaN tokens,
booleans and strings where floats belong, and out-of-range numbers while it
parses), then checked in NumPy. A well-formed numeric ``features`` body takes one
typed pass; anything else (names, mixed types, errors) takes the full path.
Syntax problems are 400s; well-formed JSON of the wrong shape or type is a 422
that says what was expected.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Literal

import msgspec
import numpy as np

from restpredict.errors import InputError, MalformedBodyError
from restpredict.model.loading import LoadedModel, Prediction
from restpredict.model.schema import ModelSchema, Scalar

__all__ = [
    "Query",
    "Row",
    "decode_json",
    "decode_predict",
    "decode_table",
    "encode_predictions",
    "missing_value_error",
    "positional_rows",
    "prediction_document",
    "records_to_rows",
    "rows_to_query",
]

Output = Literal["label", "proba"]
_Value = float | str | None  # what a JSON feature value decodes to; null is a missing value
Row = Sequence[Scalar | None] | dict[str, Scalar | None]  # None: a missing value
_WHITESPACE = b" \t\r\n"


class _Envelope(msgspec.Struct, forbid_unknown_fields=True, rename={"return_": "return"}):
    features: msgspec.Raw = msgspec.Raw()
    instances: msgspec.Raw = msgspec.Raw()
    return_: list[Output] = msgspec.field(default_factory=lambda: ["label"])


class _OneRow(msgspec.Struct, forbid_unknown_fields=True, rename={"return_": "return"}):
    features: list[float]
    return_: list[Output] = msgspec.field(default_factory=lambda: ["label"])


class _ManyRows(msgspec.Struct, forbid_unknown_fields=True, rename={"return_": "return"}):
    features: list[list[float]]
    return_: list[Output] = msgspec.field(default_factory=lambda: ["label"])


_FAST_DECODERS = (
    (msgspec.json.Decoder(_OneRow), False),
    (msgspec.json.Decoder(_ManyRows), True),
)


@dataclass(frozen=True)
class Query:
    """Validated model input: a 2-D float array, or an object array of mixed columns."""

    rows: np.ndarray
    labels: bool = True
    proba: bool = False

    def __len__(self) -> int:
        return int(self.rows.shape[0])


def decode_predict(
    body: bytes, schema: ModelSchema, *, max_rows: int, ignore_unknown: bool = False
) -> Query:
    """Parse a ``/predict`` body: ``features`` (one row or many) or named ``instances``."""
    if schema.numeric_only:
        query = _decode_numeric(body, schema, max_rows)
        if query is not None:
            return query
    if not body.strip(_WHITESPACE):
        raise MalformedBodyError('empty body; expected a JSON object like {"features": [...]}')
    if not body.isascii():  # numeric bodies are ASCII; only then is a UTF-8 check needed
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedBodyError(f"body is not valid UTF-8 (byte {exc.start})") from None
    envelope = _decode(body, _Envelope, "")
    _check_unique_keys(body)
    if not envelope.return_:
        raise InputError('"return" must name at least one of "label", "proba"')
    has_features, has_instances = bool(envelope.features), bool(envelope.instances)
    if has_features == has_instances:
        raise InputError(
            'expected exactly one of "features" (an array of numbers, or of rows) '
            'or "instances" (an array of objects keyed by feature name)',
            code="missing_features" if not has_features else "ambiguous_input",
        )
    if has_features:
        rows = _decode_features(bytes(envelope.features), schema)
    else:
        records = _decode(bytes(envelope.instances), list[dict[str, _Value]], "instances")
        rows = records_to_rows(records, schema, ignore_unknown=ignore_unknown)
    _check_count(len(rows), max_rows)
    return Query(rows=rows, labels="label" in envelope.return_, proba="proba" in envelope.return_)


def _decode_numeric(body: bytes, schema: ModelSchema, max_rows: int) -> Query | None:
    """The common request in one typed pass; None sends anything else to the full path.

    Only a body that is valid as it stands is taken here (numbers only, known keys, non-empty),
    so every error is still reported by the full path with its precise status and message.
    """
    if body.count(b'"features"') > 1 or body.count(b'"return"') > 1 or b"\\" in body:
        return None  # a repeated key (or an escaped one) is the full path's to refuse
    for decoder, nested in _FAST_DECODERS:
        try:
            envelope = decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            continue
        if not envelope.features or not envelope.return_:
            return None
        rows = _float_matrix(envelope.features, nested, schema)
        _check_count(len(rows), max_rows)
        outputs = envelope.return_
        return Query(rows=rows, labels="label" in outputs, proba="proba" in outputs)
    return None


def _float_matrix(features: list[Any], nested: bool, schema: ModelSchema) -> np.ndarray:
    """msgspec's floats as a matrix; they are finite already (it refuses NaN, inf, 1e400)."""
    lists = features if nested else [features]
    widths = set(map(len, lists))
    width = len(lists[0])
    if len(widths) > 1 or width == 0 or schema.n_features not in (None, width):
        return positional_rows(lists, schema)  # raises the precise error
    if not nested:
        return np.array(lists, dtype=np.float64)
    return np.fromiter(chain.from_iterable(lists), np.float64, len(lists) * width).reshape(
        len(lists), width
    )


def rows_to_query(
    rows: Sequence[Row],
    schema: ModelSchema,
    *,
    max_rows: int,
    ignore_unknown: bool = False,
    labels: bool = True,
    proba: bool = False,
    where: str = "instances",
) -> Query:
    """Validate rows already parsed from CSV/JSON (the CLI) exactly as the server does."""
    if rows and all(isinstance(r, dict) for r in rows):
        records: list[Any] = list(rows)
        matrix = records_to_rows(records, schema, ignore_unknown=ignore_unknown, where=where)
    else:
        if schema.numeric_only:  # parsed files carry any JSON type; the server's msgspec does not
            _reject_non_numbers(list(rows))  # type: ignore[arg-type]
        matrix = positional_rows(list(rows), schema)  # type: ignore[arg-type]
    _check_count(len(matrix), max_rows)
    return Query(rows=matrix, labels=labels, proba=proba)


def encode_predictions(model: LoadedModel, prediction: Prediction) -> bytes:
    """``{"predictions": [...], "probabilities": [{label: p, ...}, ...]}`` as JSON bytes."""
    return msgspec.json.encode(prediction_document(model, prediction))


def prediction_document(model: LoadedModel, prediction: Prediction) -> dict[str, Any]:
    """The response as plain JSON-native Python (numpy scalars become ints/floats/strs)."""
    doc: dict[str, Any] = {}
    if prediction.labels is not None:
        doc["predictions"] = prediction.labels.tolist()
    if prediction.proba is not None:
        classes = [str(c) for c in model.schema.classes or range(prediction.proba.shape[1])]
        doc["probabilities"] = [dict(zip(classes, row)) for row in prediction.proba.tolist()]
    return doc


def decode_json(data: bytes, kind: Any, where: str = "") -> Any:
    """Decode JSON into ``kind``: syntax errors are 400s, wrong types 422s naming ``where``."""
    return _decode(data, kind, where)


def decode_table(
    raw: bytes, schema: ModelSchema, *, where: str, columns: Sequence[str] | None = None
) -> list[Row]:
    """Rows ``[[...]]``, records ``[{name: value}]`` or columns ``{name: [...]}`` as rows.

    The tabular wire formats of KServe V1, TF Serving and MLflow all carry one of these
    shapes; this only types and reshapes them, and ``rows_to_query`` validates the
    result exactly as ``/predict`` does. ``columns`` names positional rows (MLflow's
    ``dataframe_split``) for models fitted with feature names.
    """
    text = raw.lstrip(_WHITESPACE)
    head, inner = text[:1], text[1:].lstrip(_WHITESPACE)[:1]
    if head == b"{":
        table = _decode(raw, dict[str, list[_Value]], where)
        return _columns_to_records(table, where)
    if head != b"[" or inner not in (b"[", b"{", b"]"):
        raise InputError(
            f'"{where}" must be a list of rows [[x1, ..., xN], ...], a list of objects '
            "[{name: value, ...}, ...] or an object of columns {name: [values], ...}",
            code="invalid_shape",
        )
    if inner == b"]":
        raise InputError(f'"{where}" is empty; expected at least one row', code="empty_input")
    if inner == b"{":
        records: list[Row] = _decode(raw, list[dict[str, _Value]], where)
        return records
    scalar: Any = float | None if schema.numeric_only else _Value
    rows: list[list[Scalar]] = _decode(raw, list[list[scalar]], where)
    if columns is None or schema.feature_names is None:
        return list(rows)
    for i, row in enumerate(rows):
        if len(row) != len(columns):
            raise InputError(
                f"{where}[{i}] has {len(row)} values but there are {len(columns)} columns",
                code="ragged_rows",
            )
    return [dict(zip(columns, row)) for row in rows]


def _columns_to_records(table: dict[str, list[Any]], where: str) -> list[Row]:
    lengths = {len(values) for values in table.values()}
    if len(lengths) > 1:
        raise InputError(
            f'the columns of "{where}" have different lengths '
            f"({', '.join(map(str, sorted(lengths)))})",
            code="ragged_rows",
        )
    names = list(table)
    return [dict(zip(names, values)) for values in zip(*table.values())]


@functools.cache
def _decoder(kind: Any) -> msgspec.json.Decoder[Any]:
    """One Decoder per target type: building it once saves most of a one-row decode."""
    return msgspec.json.Decoder(kind)


def _decode(data: bytes, kind: Any, where: str) -> Any:
    try:
        return _decoder(kind).decode(data)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if "out of range" in message:
            raise MalformedBodyError(f"{_at(message, where)}: number out of float range") from None
        raise InputError(_at(message, where), code="invalid_type") from None
    except msgspec.DecodeError as exc:
        raise MalformedBodyError(f"invalid JSON: {str(exc).removeprefix('JSON is ')}") from None
    except RecursionError:
        raise MalformedBodyError("invalid JSON: nested too deeply") from None


def _check_unique_keys(body: bytes) -> None:
    """Refuse an object that names a key twice: decoders disagree on which one wins.

    msgspec keeps the last, another parser in front of the server may have checked the first.
    Run on bodies msgspec already accepted, so this parse cannot fail otherwise.
    """
    json.loads(body, object_pairs_hook=_unique_pairs)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise MalformedBodyError(f"the key {repeated!r} appears twice in one object")
    return document


def _at(message: str, where: str) -> str:
    """Rewrite msgspec's ``$[0][2]`` paths so they name the request field."""
    if where:
        if "`$" not in message:  # the field itself has the wrong type: say which field
            return f"{message} - at `{where}`"
        message = message.replace("`$", f"`{where}")
    return message.replace("`$.", "`")


def _decode_features(raw: bytes, schema: ModelSchema) -> np.ndarray:
    nested = raw.lstrip(_WHITESPACE)[1:].lstrip(_WHITESPACE).startswith(b"[")
    scalar: Any = float | None if schema.numeric_only else _Value
    try:
        decoded = _decode(raw, list[list[scalar]] if nested else list[scalar], "features")
    except InputError as exc:
        if nested and "got `array`" in exc.detail:
            raise InputError(
                '"features" is nested too deeply; expected one row [x1, ..., xN] '
                "or a list of rows [[x1, ..., xN], ...]",
                code="invalid_shape",
            ) from None
        raise
    if not decoded:
        raise InputError('"features" is empty; expected at least one row', code="empty_input")
    return positional_rows(decoded if nested else [decoded], schema)


def positional_rows(rows: list[Sequence[Scalar]], schema: ModelSchema) -> np.ndarray:
    """Check positional rows against the schema; a float64 matrix, or objects for mixed kinds."""
    if not rows:
        raise InputError("no rows given; expected at least one", code="empty_input")
    widths = {len(r) if isinstance(r, (list, tuple)) else -1 for r in rows}
    if -1 in widths:
        raise InputError("expected every row to be an array of values", code="invalid_shape")
    if len(widths) > 1:
        raise InputError(
            f"rows have different lengths ({', '.join(map(str, sorted(widths)))}); "
            "every row needs the same number of features",
            code="ragged_rows",
        )
    width = widths.pop()
    expected = schema.n_features
    if expected is not None and width != expected:
        names = f" ({', '.join(schema.feature_names)})" if schema.feature_names else ""
        raise InputError(
            f"expected {expected} features per row{names}, got {width}", code="wrong_feature_count"
        )
    if width == 0:
        raise InputError("rows are empty; expected at least one feature", code="empty_input")
    if schema.numeric_only:
        return _numeric(rows, schema)
    return _mixed(rows, schema)


def _numeric(rows: Sequence[Sequence[Scalar | None]], schema: ModelSchema) -> np.ndarray:
    # Rows are known to be equally long: fromiter over the flattened values is about twice as
    # fast as np.array on nested lists, which must discover the shape first.
    width, count = len(rows[0]), len(rows) * len(rows[0])
    try:
        flat = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=count)
    except (TypeError, ValueError):
        _reject_non_numbers(rows)  # anything but a number or null
        values = (math.nan if v is None else v for v in chain.from_iterable(rows))
        flat = np.fromiter(values, dtype=np.float64, count=count)
    matrix = flat.reshape(len(rows), width)
    if not np.isfinite(matrix).all():
        _check_missing(matrix, schema)
    return matrix


def _check_missing(matrix: np.ndarray, schema: ModelSchema) -> None:
    """Infinity is out of range (400); NaN is a missing value, refused where the model is."""
    if np.isinf(matrix).any():
        raise MalformedBodyError("a number is out of float range", code="number_out_of_range")
    for i, j in zip(*np.nonzero(np.isnan(matrix))):
        if not schema.nullable(int(j)):
            raise missing_value_error(int(i), int(j), schema)


def missing_value_error(i: int, j: int, schema: ModelSchema) -> InputError:
    """The 422 for a null where the model cannot take one, naming the row and feature."""
    return InputError(
        f"row {i}, feature {schema.feature_label(j)} is missing (null), but "
        f"{schema.estimator} does not accept missing values there; send a value",
        code="missing_value",
    )


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _reject_non_numbers(rows: Sequence[Sequence[Scalar | None]]) -> None:
    """A 422 naming the first value that is not a JSON number or null (NumPy would coerce
    "1.5"); nulls (and NaN from binary tensors) are missing values, judged after."""
    for i, row in enumerate(rows):
        for j, value in enumerate(row if isinstance(row, (list, tuple)) else ()):
            if _is_missing(value):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(
                    f"row {i}, feature {j}: expected a number, got {value!r}", code="invalid_type"
                )
            if not _finite(value):
                raise InputError(
                    f"row {i}, feature {j}: expected a finite number, got {value!r}",
                    code="invalid_type",
                )


def _finite(value: Scalar | None) -> bool:
    """math.isfinite (np.isfinite is 10x slower per scalar), False for ints beyond float range."""
    try:
        return isinstance(value, (int, float)) and math.isfinite(value)
    except OverflowError:
        return False


def _mixed(rows: Sequence[Sequence[Scalar | None]], schema: ModelSchema) -> np.ndarray:
    kinds = schema.feature_kinds or ()
    names = schema.feature_names or ()
    matrix = np.empty((len(rows), len(kinds)), dtype=object)
    for i, row in enumerate(rows):
        for j, (value, kind) in enumerate(zip(row, kinds)):
            if _is_missing(value):
                if not schema.nullable(j):
                    raise missing_value_error(i, j, schema)
                matrix[i, j] = math.nan if kind == "number" else schema.missing_value(j)
                continue
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if kind == "number" and not (number and _finite(value)):
                raise InputError(
                    f"row {i}, feature {names[j]!r}: expected a number, got {value!r}",
                    code="invalid_type",
                )
            if kind == "string" and not isinstance(value, str):
                raise InputError(
                    f"row {i}, feature {names[j]!r}: expected a string, got {value!r}",
                    code="invalid_type",
                )
            matrix[i, j] = value
    return matrix


def records_to_rows(
    records: list[dict[str, Scalar | None]],
    schema: ModelSchema,
    *,
    ignore_unknown: bool,
    where: str = "instances",
) -> np.ndarray:
    """Order named rows by ``feature_names_in_``; missing or unknown names are 422s.

    ``where`` names the request field in messages (``instances``, ``dataframe_records``...).
    """
    if schema.feature_names is None:
        raise InputError(
            "this model was not fitted with feature names, so it takes positional rows "
            f"of {schema.n_features} values, not objects keyed by name "
            '(in /predict: "features")',
            code="names_unsupported",
        )
    if not records:
        raise InputError(f'"{where}" is empty; expected at least one row', code="empty_input")
    names = schema.feature_names
    known = set(names)
    rows = []
    for i, record in enumerate(records):
        missing = [n for n in names if n not in record]
        if missing:
            raise InputError(
                f"{where}[{i}] is missing {len(missing)} feature(s): {', '.join(missing)}",
                code="missing_columns",
            )
        if not ignore_unknown and len(record) != len(names):
            unknown = sorted(set(record) - known)
            raise InputError(
                f"{where}[{i}] has unknown feature(s): {', '.join(unknown)}; "
                f"expected exactly: {', '.join(names)}",
                code="unknown_columns",
            )
        rows.append([record[n] for n in names])
    if schema.numeric_only:
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                if isinstance(value, str):
                    raise InputError(
                        f"{where}[{i}].{names[j]}: expected a number, got {value!r}",
                        code="invalid_type",
                    )
        return _numeric(rows, schema)
    return _mixed(rows, schema)


def _check_count(n_rows: int, max_rows: int) -> None:
    if n_rows > max_rows:
        raise InputError(
            f"{n_rows} rows in one request; the limit is {max_rows} (max_rows)",
            code="too_many_rows",
        )
