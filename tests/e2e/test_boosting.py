"""XGBoost, LightGBM and CatBoost native files through a real server and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from tests.model.test_boosting import _cli, _native
from tests.support.servers import ServerProcess


def test_native_file_through_serve_predict_and_info(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    path, original, x = _native("xgb-json", tmp_path)
    server = serve(str(path))
    rows = x[::25]
    expected = np.asarray(original.predict(rows)).tolist()
    got = httpx.post(f"{server.url}/predict", json={"features": rows.tolist()}, timeout=30)
    assert got.json() == {"predictions": expected}
    info = _cli("info", str(path), "--json")
    assert info.returncode == 0, info.stderr
    meta = json.loads(info.stdout)
    assert meta["estimator"] == "XGBClassifier" and meta["n_features"] == 4
    done = _cli("predict", "--model", str(path), "-f", ",".join(map(str, rows[0])), "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["prediction"] == expected[0]
