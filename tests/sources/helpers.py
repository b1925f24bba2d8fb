"""Shared pieces of the source tests: the local answer every source must reproduce."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris

from restpredict.model.loading import load_model
from restpredict.sources import ResolvedSource


def same_answers(resolved: ResolvedSource, reference: Path) -> None:
    """The resolved model predicts exactly what the reference file's model predicts."""
    rows = load_iris().data[::7]
    got = load_model(resolved.model_file).predict(rows, proba=True)
    want = load_model(reference).predict(rows, proba=True)
    assert got.labels is not None and want.labels is not None
    assert got.labels.tolist() == want.labels.tolist()
    np.testing.assert_array_equal(got.proba, want.proba)
