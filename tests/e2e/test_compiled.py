"""The ONNX backend in a real server process: used when verified, else a fallback that says so."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier

import tests.model.test_compiled as unit
from tests.support.servers import ServerProcess

# Fixtures shared with the unit tests of the same module.
cancer = unit.cancer
forest = unit.forest


def test_server_with_onnx_backend(
    serve: Callable[..., ServerProcess],
    forest: RandomForestClassifier,
    cancer: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    path = tmp_path / "forest.joblib"
    joblib.dump(forest, path)
    server = serve(str(path), "--backend", "onnx")
    assert httpx.get(f"{server.url}/metadata").json()["backend"] == "onnx"
    X, _ = cancer
    rows = X[::7]
    body = {"features": rows.tolist(), "return": ["label", "proba"]}
    got = httpx.post(f"{server.url}/predict", json=body, timeout=30).json()
    assert got["predictions"] == forest.predict(rows).tolist()
    proba = np.array([list(p.values()) for p in got["probabilities"]])
    np.testing.assert_allclose(proba, forest.predict_proba(rows), rtol=0, atol=1e-5)


def test_server_falls_back_and_says_so(
    serve: Callable[..., ServerProcess], frame_path: Path
) -> None:
    server = serve(str(frame_path), "--backend", "onnx")
    assert httpx.get(f"{server.url}/metadata").json()["backend"] == "sklearn"
    assert "compiled backend not used" in server.output()
