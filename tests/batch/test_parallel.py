"""predict_for: where predictions run, and how many BLAS threads they get."""

from __future__ import annotations

import os
from pathlib import Path

from threadpoolctl import threadpool_info

from restpredict.batch import BatchJob
from restpredict.batch.parallel import predictor_for
from restpredict.model.loading import LoadedModel


def _blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_in_process_blas_leaves_a_core_to_the_reader(tmp_path: Path, iris: LoadedModel) -> None:
    """OpenBLAS threads spin while idle: on all cores they took the read-ahead thread's."""
    cores = len(os.sched_getaffinity(0))
    before = _blas_threads()
    job = BatchJob("in.parquet", tmp_path / "out.parquet", "parquet")
    with predictor_for(iris, job):
        assert _blas_threads() == {max(1, cores - 1)}
    assert _blas_threads() == before
