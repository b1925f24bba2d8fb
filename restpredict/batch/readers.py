"""Input tables as a stream of record batches, so memory follows the batch, not the file.

A path names one file, a directory (every file in it, recursively, in name order, skipping
hidden files and Spark's ``_SUCCESS`` markers) or a glob; all its files are one table. Parquet
is read page by page (``pre_buffer=False`` and a 1 MiB buffered stream): pyarrow's dataset
scanner and its default pre-buffering hold a whole row group per column (a million rows, by
pyarrow's default) and took 3-5x the memory on the benchmark table. Arrow IPC (Feather V2)
files are read one record batch at a time, cut to the batch size. CSV is read
by pyarrow's streaming reader with every column as text, so that one bad cell is one bad row
(validation parses the numbers) instead of a failed file. JSON and JSON Lines rows, which can
be positional arrays and can mix types within a column, come from the CLI's row reader.
"""

from __future__ import annotations

import csv
import glob
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
import pyarrow.fs as pa_fs
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq

from restpredict.batch.formats import Format, format_of, input_format_of
from restpredict.batch.stores import RemoteFile, find_remote_files, is_remote
from restpredict.codecs.payload import Row
from restpredict.codecs.rows import chunks
from restpredict.errors import InputError
from restpredict.model.schema import ModelSchema

__all__ = ["Piece", "Source", "find_files", "open_source", "read_ahead"]

InputFile = Path | RemoteFile  # a local file, or one in an object store (``s3://...``)
T = TypeVar("T")
_PARQUET_BUFFER_BYTES = 1 << 20
_CSV_BLOCK_BYTES = 8 << 20


@dataclass(frozen=True)
class Piece:
    """Consecutive input rows, numbered from ``first_row``: an Arrow batch or parsed rows."""

    first_row: int
    data: pa.RecordBatch | list[Row]

    def __len__(self) -> int:
        return self.data.num_rows if isinstance(self.data, pa.RecordBatch) else len(self.data)


@dataclass(frozen=True)
class Source:
    """An input table: its files, format, columns (None for JSON rows) and row count if cheap."""

    files: tuple[InputFile, ...]
    format: Format
    schema: pa.Schema | None
    total_rows: int | None
    batch_size: int
    csv_header: bool = True

    @property
    def text_numbers(self) -> bool:
        """CSV holds numbers as text, to be parsed; typed formats must hold them typed."""
        return self.format == "csv"

    def pieces(self, columns: Sequence[str] | None, model: ModelSchema) -> Iterator[Piece]:
        """The rows in order; ``columns`` (for tables) are the only ones decoded."""
        if self.format == "parquet":
            batches: Iterator[pa.RecordBatch] = _parquet_batches(self, columns)
        elif self.format == "arrow":
            batches = _ipc_batches(self, columns)
        elif self.format == "csv":
            batches = _csv_batches(self, columns)
        else:
            yield from _row_pieces(self, model)
            return
        first = 0
        for batch in batches:
            if batch.num_rows:
                yield Piece(first, batch)
                first += batch.num_rows


def read_ahead(pieces: Iterator[T], depth: int = 2) -> Iterator[T]:
    """The same pieces, read by a background thread up to ``depth`` pieces ahead.

    Decoding Parquet releases the GIL, so on two cores the next batch is read while this one is
    validated and predicted. Errors are raised here, in order; closing this generator (the run
    failed) stops the reader at its next piece.
    """
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for piece in pieces:
                if not _put(handoff, ("piece", piece), stop):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            _put(handoff, ("error", exc), stop)
        else:
            _put(handoff, ("done", None), stop)

    reader = threading.Thread(target=produce, name="restpredict-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "piece":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        reader.join()


def _put(
    handoff: queue.Queue[tuple[str, Any]], item: tuple[str, Any], stop: threading.Event
) -> bool:
    """Put unless the consumer has gone; False once it has."""
    while not stop.is_set():
        try:
            handoff.put(item, timeout=0.1)
        except queue.Full:
            continue
        return True
    return False


def open_source(
    location: str, given: str | None, model: ModelSchema, batch_size: int = 65_536
) -> Source:
    """Find the files ``location`` names and read their schema (not their rows)."""
    files = find_files(location)
    formats = {input_format_of(str(f), given) for f in files}
    if len(formats) > 1:
        raise InputError(f"{location}: holds files of several formats ({', '.join(formats)})")
    fmt = formats.pop()
    schema: pa.Schema | None = None
    total: int | None = None
    if fmt in ("parquet", "arrow"):
        dataset = _dataset(files, fmt)
        schema = dataset.schema
        total = dataset.count_rows()
    elif fmt == "csv":
        names, header = _csv_names(_csv_header(files[0]), model)
        schema = pa.schema([(name, pa.string()) for name in names])
        return Source(tuple(files), fmt, schema, None, batch_size, header)
    return Source(tuple(files), fmt, schema, total, batch_size)


def _csv_names(first: list[str], model: ModelSchema) -> tuple[list[str], bool]:
    """Column names, and whether the first line is a header rather than data.

    As the CLI's CSV reader decides: a first line whose values are all numbers is data (a model
    with string columns is fitted on a DataFrame, so its files carry a header). Data columns
    take the model's feature names when their count matches, else ``column_0``...
    """
    if not all(_is_number(value) for value in first):
        return first, True
    names = model.feature_names
    if names is not None and len(names) == len(first):
        return list(names), False
    return [f"column_{i}" for i in range(len(first))], False


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def find_files(location: str) -> list[InputFile]:
    """The files a path, directory or glob (local, or an fsspec URL) names, in a stable order."""
    if is_remote(location):
        remote = find_remote_files(location)
        if len(remote) == 1:
            return list(remote)
        tables: list[InputFile] = [
            f for f in remote if format_of(f.path, None, allowed=_ALL) is not None
        ]
        if not tables:
            raise InputError(f"{location}: no Parquet, Arrow, CSV or JSON file there")
        return tables
    if glob.has_magic(location):
        found = [Path(p) for p in sorted(glob.glob(location, recursive=True))]
        files = [p for p in found if p.is_file() and not _hidden(p.name)]
        if not files:
            raise InputError(f"{location}: no file matches")
        return list(files)
    path = Path(location)
    if path.is_dir():
        files = sorted(
            Path(root) / name
            for root, dirs, names in os.walk(path)
            for name in names
            if not _hidden(name) and not any(_hidden(d) for d in Path(root).relative_to(path).parts)
        )
        known: list[InputFile] = [
            f for f in files if format_of(str(f), None, allowed=_ALL) is not None
        ]
        if not known:
            raise InputError(f"{location}: no Parquet, Arrow, CSV or JSON file in this directory")
        return known
    if not path.is_file():
        raise InputError(f"{location}: cannot read input (no such file or directory)")
    return [path]


_ALL: tuple[Format, ...] = ("parquet", "arrow", "csv", "json", "jsonl")


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def _dataset(files: Sequence[InputFile], fmt: Format) -> ds.Dataset:
    kind = "parquet" if fmt == "parquet" else "ipc"
    try:
        if isinstance(files[0], RemoteFile):
            handler = pa_fs.PyFileSystem(pa_fs.FSSpecHandler(files[0].fs))
            paths = [f.path for f in files if isinstance(f, RemoteFile)]
            return ds.dataset(paths, format=kind, filesystem=handler)
        return ds.dataset([str(f) for f in files], format=kind)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"cannot read the input as {fmt}: {_first_line(exc)}") from None


def _parquet_batches(source: Source, columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
    for path in source.files:
        try:
            with (
                _binary(path) as stream,
                pq.ParquetFile(
                    stream, pre_buffer=False, buffer_size=_PARQUET_BUFFER_BYTES
                ) as parquet,
            ):
                _check_columns(path, parquet.schema_arrow, columns)
                yield from parquet.iter_batches(
                    batch_size=source.batch_size,
                    columns=list(columns) if columns is not None else None,
                    use_threads=False,
                )
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path}: cannot read it as Parquet ({_first_line(exc)})") from None


def _ipc_batches(source: Source, columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
    size = source.batch_size
    for path in source.files:
        try:
            with _binary(path) as stream:
                reader = pa_ipc.open_file(stream)
                _check_columns(path, reader.schema, columns)
                for index in range(reader.num_record_batches):
                    batch = reader.get_batch(index)
                    if columns is not None:
                        batch = batch.select(list(columns))
                    for start in range(0, batch.num_rows, size):
                        yield batch.slice(start, size)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path}: cannot read it as Arrow IPC ({_first_line(exc)})") from None


def _binary(path: InputFile) -> Any:
    """The file opened for reading: Arrow's own file for local disk, fsspec's for a store."""
    return path.open("rb") if isinstance(path, RemoteFile) else pa.OSFile(str(path))


def _check_columns(path: InputFile, schema: pa.Schema, columns: Sequence[str] | None) -> None:
    """Every file of a table must hold the columns the first one did."""
    missing = [c for c in columns or () if c not in schema.names]
    if missing:
        raise InputError(f"{path}: has no column {', '.join(map(repr, missing))}")


def _csv_header(path: InputFile) -> list[str]:
    try:
        with path.open(encoding="utf-8", newline="") as stream:
            first = next(csv.reader(stream), None)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read input ({exc})") from None
    if not first:
        raise InputError(f"{path}: empty CSV file; expected a header line")
    return [name.strip() for name in first]


def _csv_batches(source: Source, columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
    assert source.schema is not None
    names = source.schema.names
    for path in source.files:
        if source.csv_header and _csv_header(path) != names:
            raise InputError(f"{path}: its header differs from {source.files[0]}'s")
        reader = pa_csv.open_csv(
            path.open("rb") if isinstance(path, RemoteFile) else path,
            read_options=pa_csv.ReadOptions(
                column_names=names,
                skip_rows=1 if source.csv_header else 0,
                block_size=_CSV_BLOCK_BYTES,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                include_columns=list(columns) if columns is not None else None,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        try:
            yield from reader
        except pa.ArrowInvalid as exc:
            raise InputError(f"{path}: {_first_line(exc)}") from None


def _row_pieces(source: Source, model: ModelSchema) -> Iterator[Piece]:
    first = 0
    for path in source.files:
        fmt: Literal["json", "jsonl"] = "json" if source.format == "json" else "jsonl"
        try:
            with path.open(encoding="utf-8") as stream:
                for rows in chunks(stream, fmt, model, source.batch_size):
                    yield Piece(first, rows)
                    first += len(rows)
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
