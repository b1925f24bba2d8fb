"""A forest served with no flags runs on its fast path and answers exactly as scikit-learn."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tests.support.servers import ServerProcess

X, Y = load_breast_cancer(return_X_y=True)


def test_served_forest_with_no_flags_is_on_the_fast_path(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    forest = RandomForestClassifier(n_estimators=40, max_depth=8, random_state=0).fit(X, Y)
    path = tmp_path / "forest.joblib"
    joblib.dump(forest, path)
    server = serve(str(path), "--log-format", "text")  # the start-up panel: text logs only
    meta = httpx.get(f"{server.url}/metadata").json()
    assert meta["backend"] == "fast" and meta["fast_path"] == "forest (bit-identical)"
    rows = X[::5]
    body = {"features": rows.tolist(), "return": ["label", "proba"]}
    got = httpx.post(f"{server.url}/predict", json=body, timeout=30).json()
    assert got["predictions"] == forest.predict(rows).tolist()
    proba = np.array([list(p.values()) for p in got["probabilities"]])
    assert np.array_equal(proba, forest.predict_proba(rows))
    one = httpx.post(f"{server.url}/predict", json={"features": X[3].tolist()}, timeout=30)
    assert one.json()["predictions"] == forest.predict(X[3:4]).tolist()
    too_big = httpx.post(f"{server.url}/predict", json={"features": [1e300] * 30}, timeout=30)
    assert too_big.status_code == 422
    missing = [*X[4].tolist()[:-1], None]  # forests take missing values: NaN down the tree
    answer = httpx.post(f"{server.url}/predict", json={"features": missing}, timeout=30)
    with_nan = np.array([[*X[4, :-1], np.nan]])
    assert answer.json()["predictions"] == forest.predict(with_nan).tolist()
    assert "forest (bit-identical)" in server.output()


def test_served_data_frame_pipeline_with_string_columns_is_on_the_fast_path(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, 300),
            "city": rng.choice(["lyon", "nice", "paris"], 300).astype(object),
        }
    )
    target = ((frame.age > 40) ^ (frame.city == "paris")).astype(int)
    front = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    model = make_pipeline(front, LogisticRegression()).fit(frame, target)
    path = tmp_path / "frame.joblib"
    joblib.dump(model, path)
    server = serve(str(path))
    meta = httpx.get(f"{server.url}/metadata").json()
    assert meta["backend"] == "fast"
    assert meta["fast_path"] == (
        "pipeline: ColumnTransformer(OneHotEncoder, StandardScaler), linear (bit-identical)"
    )
    records = [
        {"age": 31.5, "city": "paris"},
        {"age": 52, "city": "lyon"},
        {"age": 47.25, "city": "madrid"},  # unknown: encoded as zeros, as scikit-learn does
    ]
    body = {"instances": records, "return": ["label", "proba"]}
    got = httpx.post(f"{server.url}/predict", json=body, timeout=30).json()
    expected = pd.DataFrame(records).astype({"age": float})
    assert got["predictions"] == model.predict(expected).tolist()
    proba = np.array([list(p.values()) for p in got["probabilities"]])
    assert np.array_equal(proba, model.predict_proba(expected))
