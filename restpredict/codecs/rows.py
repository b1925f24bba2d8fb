"""Read input rows from CSV, JSON or JSON Lines in chunks, for ``restpredict predict --input``.

CSV and JSON Lines are streamed: a million-row file never sits in memory or in one
request. A ``.json`` file is one document (an array of rows or records, or a
``/predict`` body) and is read whole. CSV values arrive as text; they are turned
into numbers for the model's numeric columns and left as strings for the rest, so
the same validation as the server's reports anything that does not fit.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Literal

from restpredict.errors import InputError
from restpredict.model.schema import ModelSchema, Scalar

__all__ = ["CountingReader", "Format", "Row", "chunks", "detect_format", "parse_features"]

Format = Literal["csv", "json", "jsonl"]
Row = Sequence[Scalar | None] | dict[str, Scalar | None]  # None: a missing value


def detect_format(path: str, given: str | None) -> Format:
    """The explicit format, else the file suffix; standard input defaults to JSON Lines."""
    choice = given or {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(
        Path(path).suffix.lower(), "jsonl" if path == "-" else ""
    )
    if choice not in ("csv", "json", "jsonl"):
        raise InputError(f"{path}: cannot tell the format; use --format csv|json|jsonl")
    return choice  # type: ignore[return-value]


def parse_features(text: str) -> list[Scalar | None]:
    """``--features 5.1,,1.4,0.2`` (or a JSON array) as one row; an empty value is missing."""
    text = text.strip()
    if text.startswith("["):
        try:
            row = json.loads(text, parse_constant=_no_constant)
        except ValueError as exc:
            raise InputError(f"--features: not a JSON array ({exc})") from None
        if not isinstance(row, list):
            raise InputError("--features: expected a JSON array of values")
        return row
    return [_scalar(part.strip()) for part in next(csv.reader([text]))]


def chunks(stream: IO[str], fmt: Format, schema: ModelSchema, size: int) -> Iterator[list[Row]]:
    """Lists of at most ``size`` rows, in file order."""
    rows = {"csv": _csv_rows, "json": _json_rows, "jsonl": _jsonl_rows}[fmt](stream, schema)
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _csv_rows(stream: IO[str], schema: ModelSchema) -> Iterator[Row]:
    reader = csv.reader(stream)
    first = next(reader, None)
    if first is None:
        return
    names = schema.feature_names
    header = [c.strip() for c in first]
    if names is not None and set(names) <= set(header):
        numeric = {n for n, k in zip(names, schema.feature_kinds or ()) if k == "number"}
        for line, values in enumerate(reader, start=2):
            _check_width(values, len(header), line)
            record = dict(zip(header, values))
            yield {n: _scalar(record[n]) if n in numeric else _text(record[n]) for n in names}
        return
    kinds = schema.feature_kinds
    if not _is_data_row(header, kinds):  # a header the model cannot use by name
        first = None
    if first is not None:
        yield _typed(first, kinds)
    for values in reader:
        yield _typed(values, kinds)


def _is_data_row(values: list[str], kinds: Sequence[str] | None) -> bool:
    """Whether a first CSV row is data: its numeric columns hold numbers (else, a header).

    Only numeric columns can tell the two apart; a string column holds text either way,
    so a model with no numeric column gets its first row taken as a header. An empty
    cell (a missing value) says nothing either way, but one number must be there.
    """
    if kinds is None or len(kinds) != len(values):
        numeric = values
    else:
        numeric = [v for v, kind in zip(values, kinds) if kind == "number"]
    given = [v for v in numeric if v.strip()]
    return bool(given) and all(_is_number(v) for v in given)


def _typed(values: list[str], kinds: Sequence[str] | None) -> list[Scalar | None]:
    """Numbers for the numeric columns; a string column's text is kept, even "1"."""
    if kinds is None or len(kinds) != len(values):
        return [_scalar(v) for v in values]
    return [_scalar(v) if kind == "number" else _text(v) for v, kind in zip(values, kinds)]


def _json_rows(stream: IO[str], schema: ModelSchema) -> Iterator[Row]:
    try:
        document = json.load(stream, parse_constant=_no_constant)
    except ValueError as exc:
        raise InputError(f"input is not valid JSON ({exc})") from None
    if isinstance(document, dict):
        document = document.get("instances", document.get("features"))
    if isinstance(document, list) and document and not isinstance(document[0], (list, dict)):
        document = [document]
    if not isinstance(document, list):
        raise InputError('expected a JSON array of rows, or an object with "features"/"instances"')
    yield from document


def _jsonl_rows(stream: IO[str], schema: ModelSchema) -> Iterator[Row]:
    for line_no, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_constant=_no_constant)
        except ValueError as exc:
            raise InputError(f"line {line_no}: not valid JSON ({exc})") from None
        if not isinstance(row, (list, dict)):
            raise InputError(f"line {line_no}: expected a JSON array or object")
        yield row


def _no_constant(token: str) -> float:
    """NaN and Infinity are not JSON (the server refuses them too); null is a missing value."""
    raise ValueError(f"{token} is not a JSON value; write null for a missing value")


def _text(value: str) -> str | None:
    """A string cell; empty is a missing value, as pandas and MLflow read CSV."""
    return value if value else None


def _scalar(value: str) -> Scalar | None:
    """A finite float if the text is one, None if empty; else the text, for validation."""
    if not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return number if math.isfinite(number) else value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _check_width(values: list[str], width: int, line: int) -> None:
    if len(values) != width:
        raise InputError(f"CSV line {line}: {len(values)} values, but the header has {width}")


class CountingReader(io.RawIOBase):
    """Counts bytes read from a binary file, so a progress bar can follow a text reader."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)
