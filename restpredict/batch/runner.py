"""The scoring loop: read a batch, validate it, predict it, write it; repeat until done.

Memory holds a few batches at a time, whatever the input's size: the reader's read-ahead, the
batch being scored and, with ``--jobs``, the batches in flight to worker processes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from restpredict.batch.job import BatchJob, Progress, Summary
from restpredict.batch.parallel import predictor_for
from restpredict.batch.predict import Scored, Work
from restpredict.batch.readers import Source, open_source, read_ahead
from restpredict.batch.rejects import open_reject_log
from restpredict.batch.validate import Layout, check_batch, check_rows, plan_layout
from restpredict.batch.writers import (
    BatchWriter,
    label_type,
    open_writer,
    output_batch,
    output_schema,
)
from restpredict.codecs.payload import Row
from restpredict.errors import InputError
from restpredict.model.backend import backend_label
from restpredict.model.loading import LoadedModel

__all__ = ["score_table"]


def score_table(model: LoadedModel, job: BatchJob, progress: Progress | None = None) -> Summary:
    """Score every row of ``job.input`` into ``job.output``; the counts and time it took."""
    if job.on_error == "skip" and job.errors_to is None:
        raise InputError("--on-error skip needs --errors-to FILE, so no row is dropped unnamed")
    if job.proba and not model.schema.has_proba:
        raise InputError(f"{model.schema.estimator} has no predict_proba; leave out --proba")
    started = time.perf_counter()
    source = open_source(job.input, job.input_format, model.schema, job.batch_size)
    layout = _layout(source, model, job)
    summary = Summary(backend=backend_label(model))
    if progress is not None:
        progress.start(source.total_rows)
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(open_reject_log(job.errors_to)) if job.errors_to else None
        predictor = stack.enter_context(predictor_for(model, job))
        works = _validated(source, layout, model, job, summary)
        writer: _Output | None = None
        for work, scored in predictor.map(works):
            rejects = sorted(work.checked.rejects + scored.rejects, key=lambda r: r.row)
            if rejects and job.on_error == "fail":
                raise InputError(str(rejects[0]))
            if writer is None and _count(scored) > 0:
                writer = _Output(stack, job, _schema(model, job, work, scored))
            if writer is not None and _count(scored) > 0:
                writer.write(_kept(work, scored), scored)
            if log is not None:
                log.add(rejects)
            summary.rows_scored += _count(scored)
            summary.rows_rejected += len(rejects)
            if progress is not None:
                progress.advance(len(work.piece))
        if writer is None:  # nothing scored: still a typed, empty file
            keep = layout.keep if layout is not None else ()
            fields = [source.schema.field(n) for n in keep] if source.schema else []
            _Output(
                stack, job, output_schema(fields, _fallback_label_type(model), _classes(model, job))
            )
    summary.seconds = time.perf_counter() - started
    return summary


class _Output:
    """The output writer, opened on the first scored batch once the label type is known."""

    def __init__(self, stack: contextlib.ExitStack, job: BatchJob, schema: pa.Schema) -> None:
        self.schema = schema
        self._writer: BatchWriter = stack.enter_context(
            open_writer(job.output, job.output_format, schema)
        )

    def write(self, kept: pa.RecordBatch | None, scored: Scored) -> None:
        self._writer.write(output_batch(self.schema, kept, scored.prediction))


def _layout(source: Source, model: LoadedModel, job: BatchJob) -> Layout | None:
    if source.schema is None:
        if job.keep_all:
            raise InputError("--keep-all needs a table input (Parquet, Arrow, CSV)")
        return None
    return plan_layout(
        source.schema.names,
        model.schema,
        keep=job.keep_columns,
        keep_all=job.keep_all,
        ignore_unknown=job.ignore_unknown,
    )


def _validated(
    source: Source, layout: Layout | None, model: LoadedModel, job: BatchJob, summary: Summary
) -> Iterator[Work]:
    """Pieces read and validated by the read-ahead thread while this one predicts.

    Decoding Parquet and building the model's matrix (NumPy copies) release the GIL, so on two
    cores they overlap the model call of the batch before instead of queueing behind it.
    """
    return read_ahead(_checked(source, layout, model, job, summary))


def _checked(
    source: Source, layout: Layout | None, model: LoadedModel, job: BatchJob, summary: Summary
) -> Iterator[Work]:
    columns = list(dict.fromkeys(layout.features + layout.keep)) if layout else None
    for piece in source.pieces(columns, model.schema):
        summary.rows_in += len(piece)
        if isinstance(piece.data, pa.RecordBatch):
            assert layout is not None
            checked = check_batch(
                piece.data,
                layout,
                model.schema,
                first_row=piece.first_row,
                text_numbers=source.text_numbers,
            )
            kept = piece.data.select(list(layout.keep)) if layout.keep else None
        else:
            rows, kept = _split_kept(piece.data, job.keep_columns)
            checked = check_rows(
                rows, model.schema, first_row=piece.first_row, ignore_unknown=job.ignore_unknown
            )
        if checked.rejects and job.on_error == "fail":
            raise InputError(str(checked.rejects[0]))
        yield Work(piece, checked, kept)


def _split_kept(rows: list[Row], keep: tuple[str, ...]) -> tuple[list[Row], pa.RecordBatch | None]:
    """JSON rows without their kept keys, and those keys' values as a batch."""
    if not keep:
        return rows, None
    if not all(isinstance(row, dict) for row in rows):
        raise InputError("--keep-columns needs rows with named values (JSON objects)")
    records = [row for row in rows if isinstance(row, dict)]
    absent = [name for name in keep if name not in records[0]]
    if absent:
        raise InputError(f"--keep-columns: no column {', '.join(map(repr, absent))} in the input")
    kept = pa.RecordBatch.from_pylist([{k: r.get(k) for k in keep} for r in records])
    stripped: list[Row] = [{k: v for k, v in r.items() if k not in keep} for r in records]
    return stripped, kept


def _kept(work: Work, scored: Scored) -> pa.RecordBatch | None:
    """The kept columns of the rows that were scored."""
    if work.kept is None:
        return None
    mask = work.checked.valid
    if scored.accepted is not None:
        base = mask if mask is not None else np.ones(len(work.piece), dtype=bool)
        mask = base.copy()
        mask[np.flatnonzero(base)] = scored.accepted
    return work.kept if mask is None else work.kept.filter(pa.array(mask))


def _schema(model: LoadedModel, job: BatchJob, work: Work, scored: Scored) -> pa.Schema:
    fields = list(work.kept.schema) if work.kept is not None else []
    labels = scored.prediction.labels
    proba = scored.prediction.proba
    width = proba.shape[1] if proba is not None else 0
    kind = label_type(labels) if labels is not None else None
    return output_schema(fields, kind, _classes(model, job, width))


def _classes(model: LoadedModel, job: BatchJob, width: int = 0) -> tuple[object, ...] | None:
    """The labels of the probability columns (their index when the model names none)."""
    if not job.proba:
        return None
    classes = model.schema.classes
    return tuple(classes) if classes is not None else tuple(range(width))


def _fallback_label_type(model: LoadedModel) -> pa.DataType:
    """The label type from the model's example row, for an output with no scored rows."""
    example = model.schema.example
    if example is None:
        return pa.null()
    row = np.array([example], dtype=np.float64 if model.schema.numeric_only else object)
    labels = model.predict(row).labels
    return label_type(labels) if labels is not None else pa.null()


def _count(scored: Scored) -> int:
    labels = scored.prediction.labels
    return 0 if labels is None else len(labels)
