"""``--jobs N``: predictions in N worker processes, for models that use one core.

Reading, validating and writing stay in the main process, in order; only the model input of
each batch travels to a worker (a pickled NumPy array) and only its predictions come back. At
most two batches per worker are in flight, so memory stays bounded. Workers are spawned, not
forked: the main process runs Arrow's reader threads, which a fork would copy mid-flight. Each
worker gets the model the main process loaded and verified (its SHA-256 pin and version checks
passed there), once, when it starts.

In this process (``--jobs 1``) the model's BLAS gets one thread fewer than the cores this
process may use: the read-ahead thread keeps one core busy decoding, and OpenBLAS's threads
spin while they wait for work, so on the 2-core benchmark machine a second BLAS thread took
the reader's core and the run used about twice the CPU time for the same rows.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Protocol

import numpy as np
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

from restpredict.batch.job import BatchJob
from restpredict.batch.predict import Scored, Work, predict_rows
from restpredict.model.loading import LoadedModel, Prediction

__all__ = ["Predictor", "predictor_for"]

_IN_FLIGHT_PER_WORKER = 2
_worker_model: LoadedModel | None = None


class Predictor(Protocol):
    """Predictions for validated pieces, yielded in the order the pieces came."""

    def map(self, works: Iterator[Work]) -> Iterator[tuple[Work, Scored]]:
        """Each piece with its predictions."""


@contextlib.contextmanager
def predictor_for(model: LoadedModel, job: BatchJob) -> Iterator[Predictor]:
    """In this process for ``jobs=1``; else a pool of ``jobs`` processes, shut down after."""
    if job.jobs <= 1:
        with threadpool_limits(limits=max(1, _usable_cores() - 1), user_api="blas"):
            yield _InProcess(model, job.proba)
        return
    pool = ProcessPoolExecutor(
        max_workers=job.jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(model,),
    )
    try:
        yield _Pool(pool, job.jobs * _IN_FLIGHT_PER_WORKER, job.proba)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _InProcess:
    def __init__(self, model: LoadedModel, proba: bool) -> None:
        self._model = model
        self._proba = proba

    def map(self, works: Iterator[Work]) -> Iterator[tuple[Work, Scored]]:
        for work in works:
            checked = work.checked
            yield (
                work,
                _score(self._model, checked.rows, work.row_numbers, self._proba, checked.finite),
            )


class _Pool:
    def __init__(self, pool: ProcessPoolExecutor, window: int, proba: bool) -> None:
        self._pool = pool
        self._window = window
        self._proba = proba

    def map(self, works: Iterator[Work]) -> Iterator[tuple[Work, Scored]]:
        pending: deque[tuple[Work, Future[Scored]]] = deque()
        for work in works:
            rows, numbers, finite = work.checked.rows, work.row_numbers, work.checked.finite
            pending.append(
                (work, self._pool.submit(_predict_in_worker, rows, numbers, self._proba, finite))
            )
            if len(pending) >= self._window:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def _usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _start_worker(model: LoadedModel) -> None:
    """Keep the model; one BLAS/OpenMP thread per worker, as N workers share N cores."""
    global _worker_model
    _worker_model = model
    threadpool_limits(1)


def _predict_in_worker(rows: np.ndarray, numbers: np.ndarray, proba: bool, finite: bool) -> Scored:
    assert _worker_model is not None, "worker started without a model"
    return _score(_worker_model, rows, numbers, proba, finite)


def _score(
    model: LoadedModel, rows: np.ndarray, numbers: np.ndarray, proba: bool, finite: bool
) -> Scored:
    if len(rows) == 0:  # every row of the piece was refused by validation
        return Scored(Prediction(labels=np.empty(0, dtype=object)))
    return predict_rows(model, rows, numbers, proba=proba, finite=finite)
