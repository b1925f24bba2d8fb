"""Scored batches out: typed Parquet, Arrow IPC (Feather V2), CSV or JSON Lines.

Columns are the kept input columns, then ``prediction`` with the type the model returns
(string labels stay strings, integer labels integers, regression outputs float64), then one
float64 ``proba_<label>`` column per class. Files are written through ``staged``, so a run that
fails leaves no file under the output's name.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq

from restpredict.batch.formats import Format
from restpredict.batch.staging import staged
from restpredict.batch.stores import upload
from restpredict.errors import InputError
from restpredict.model.loading import Prediction

__all__ = ["PREDICTION", "BatchWriter", "open_writer", "output_batch", "output_schema"]

PREDICTION = "prediction"
Sink = Path | IO[bytes]


class BatchWriter(Protocol):
    """What every output format offers the runner."""

    def write(self, batch: pa.RecordBatch) -> None:
        """Append one batch of scored rows."""

    def close(self) -> None:
        """Finish the file (a Parquet footer, an IPC footer)."""


def output_schema(
    kept: Sequence[pa.Field],
    label_type: pa.DataType | None,
    classes: Sequence[Any] | None,
) -> pa.Schema:
    """Kept columns, ``prediction`` (unless only probabilities), ``proba_<label>`` per class."""
    fields = list(kept)
    if label_type is not None:
        fields.append(pa.field(PREDICTION, label_type))
    fields.extend(pa.field(f"proba_{c}", pa.float64()) for c in classes or ())
    names = [f.name for f in fields]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise InputError(
            f"a kept column has the name of an output column: {', '.join(clashes)}; "
            "rename it or do not keep it"
        )
    return pa.schema(fields)


def label_type(labels: np.ndarray) -> pa.DataType:
    """The Arrow type of a model's labels (object arrays of str become strings)."""
    return pa.array(labels[:1] if len(labels) else labels).type


def output_batch(
    schema: pa.Schema, kept: pa.RecordBatch | None, prediction: Prediction
) -> pa.RecordBatch:
    """One output batch in ``schema``'s column order and types."""
    columns: list[pa.Array] = list(kept.columns) if kept is not None else []
    if prediction.labels is not None and PREDICTION in schema.names:
        columns.append(_typed(prediction.labels, schema.field(PREDICTION).type))
    if prediction.proba is not None:
        columns.extend(pa.array(prediction.proba[:, j]) for j in range(prediction.proba.shape[1]))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _typed(labels: np.ndarray, kind: pa.DataType) -> pa.Array:
    try:
        return pa.array(labels, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"the model returned labels that are not {kind}: {exc}") from None


@contextlib.contextmanager
def open_writer(
    target: Path | str | IO[bytes], fmt: Format, schema: pa.Schema
) -> Iterator[BatchWriter]:
    """A writer for ``target``: a path (staged), an object-store URL (written to a local
    temporary file, uploaded once complete), or a binary stream such as stdout."""
    if isinstance(target, str):
        with tempfile.TemporaryDirectory(prefix="restpredict-output-") as scratch:
            local = Path(scratch) / PurePosixPath(target).name
            with open_writer(local, fmt, schema) as writer:
                yield writer
            upload(local, target)
    elif isinstance(target, Path):
        with staged(target) as partial:
            writer = _writer(partial, fmt, schema)
            try:
                yield writer
            finally:
                writer.close()
    else:
        writer = _writer(target, fmt, schema)
        try:
            yield writer
        finally:
            writer.close()


def _writer(sink: Sink, fmt: Format, schema: pa.Schema) -> BatchWriter:
    where: Any = str(sink) if isinstance(sink, Path) else sink
    if fmt == "parquet":
        return pq.ParquetWriter(where, schema)  # type: ignore[no-any-return]
    if fmt == "arrow":
        return pa_ipc.new_file(where, schema)  # type: ignore[no-any-return]
    if fmt == "csv":
        options = pa_csv.WriteOptions(quoting_style="needed")
        return pa_csv.CSVWriter(where, schema, write_options=options)  # type: ignore[no-any-return]
    if fmt == "jsonl":
        return _JsonLines(sink)
    raise InputError(f"cannot write {fmt}; write parquet, arrow, csv or jsonl")


class _JsonLines:
    """One JSON object per row; Arrow has no JSON writer. Values are finite, so JSON holds them."""

    def __init__(self, sink: Sink) -> None:
        self._own = isinstance(sink, Path)
        self._out: IO[bytes] = open(sink, "wb") if isinstance(sink, Path) else sink  # noqa: SIM115
        self._encoder = msgspec.json.Encoder()

    def write(self, batch: pa.RecordBatch) -> None:
        lines = [self._encoder.encode(row) for row in batch.to_pylist()]
        self._out.write(b"\n".join(lines) + b"\n" if lines else b"")

    def close(self) -> None:
        if self._own:
            self._out.close()
        else:
            self._out.flush()
