"""Choosing a fast path imports only the families the model's own classes already loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import restpredict.model.fast as fast

SCRIPT = """
import sys, joblib
from restpredict.model.fast import find_fast_path
found = find_fast_path(joblib.load(sys.argv[1]))
print(found.fast_path)
print(sorted(m for m in ("sklearn.ensemble", "sklearn.tree", "sklearn.impute") if m in sys.modules))
"""


def test_a_linear_pipeline_does_not_import_the_tree_families(tmp_path: Path) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    path = tmp_path / "lr.joblib"
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y), path)
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)], capture_output=True, text=True, check=True
    )
    assert run.stdout.splitlines() == ["pipeline: StandardScaler, linear (bit-identical)", "[]"]


def test_package_exports_the_selection_api() -> None:
    assert fast.find_fast_path is fast.select.find_fast_path
    assert "find_fast_path" in fast.__all__
