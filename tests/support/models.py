"""Small fitted models the tests serve, built from scikit-learn's bundled data."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def save_iris(path: Path) -> Path:
    """StandardScaler + LogisticRegression on iris, numpy input, string labels."""
    iris = load_iris()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(iris.data, iris.target_names[iris.target])
    joblib.dump(model, path)
    return path


def save_iris_int(path: Path) -> Path:
    """Same data, integer labels: predictions must come back as JSON ints."""
    iris = load_iris()
    model = LogisticRegression(max_iter=1000).fit(iris.data, iris.target)
    joblib.dump(model, path)
    return path


def frame_data(n: int = 60) -> tuple[pd.DataFrame, np.ndarray]:
    """A DataFrame with a string column, and labels that depend on it."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "size": rng.normal(10, 3, n),
            "color": rng.choice(["red", "green", "blue"], n),
            "weight": rng.normal(5, 1, n),
        }
    )
    labels = np.where((frame["color"] == "red") | (frame["size"] > 11), "yes", "no")
    return frame, labels


def save_frame(path: Path) -> Path:
    """A ColumnTransformer pipeline fitted on a DataFrame with a string column."""
    frame, labels = frame_data()
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["size", "weight"]),
            ("cat", OneHotEncoder(handle_unknown="error"), ["color"]),
        ]
    )
    model = make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(frame, labels)
    joblib.dump(model, path)
    return path


def save_regressor(path: Path) -> Path:
    """A regressor with no predict_proba."""
    iris = load_iris()
    model = LinearRegression().fit(iris.data[:, :3], iris.data[:, 3])
    joblib.dump(model, path)
    return path


def sha256(path: Path) -> str:
    """The SHA-256 of a file, as restpredict pins it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def replace(target: Path, source: Path | bytes) -> None:
    """Swap the file the way a deploy should: write aside, then rename over it."""
    staged = target.with_suffix(".staged")
    if isinstance(source, bytes):
        staged.write_bytes(source)
    else:
        shutil.copyfile(source, staged)
    os.replace(staged, target)
