"""XGBoost, LightGBM and CatBoost: scikit-learn-API models (alone and in pipelines) and the
libraries' native model files, served and compared with the libraries' own predictions."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from starlette.testclient import TestClient

from restpredict.app import create_app
from restpredict.errors import ExitCode
from restpredict.model.loading import LoadedModel, load_model
from restpredict.settings import Settings

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")
cb = pytest.importorskip("catboost")

NAMES = np.array(["setosa", "versicolor", "virginica"])


def _iris() -> tuple[pd.DataFrame, np.ndarray]:
    frame, target = load_iris(return_X_y=True, as_frame=True)
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return frame, np.asarray(target)


def _rows() -> np.ndarray:
    frame, _ = _iris()
    rows = frame.to_numpy()[::10].copy()
    rows[1, 2] = np.nan  # every library takes a missing value natively
    return rows


def _estimators() -> list[Any]:
    return [
        pytest.param(lambda: xgb.XGBClassifier(n_estimators=8, max_depth=3), "int", id="xgb-clf"),
        pytest.param(lambda: xgb.XGBRegressor(n_estimators=8), "reg", id="xgb-reg"),
        pytest.param(
            lambda: lgb.LGBMClassifier(n_estimators=8, min_child_samples=5, verbose=-1),
            "str",
            id="lgbm-clf",
        ),
        pytest.param(lambda: lgb.LGBMRegressor(n_estimators=8, verbose=-1), "reg", id="lgbm-reg"),
        pytest.param(
            lambda: cb.CatBoostClassifier(
                iterations=8, verbose=0, thread_count=1, allow_writing_files=False
            ),
            "str",
            id="cat-clf",
        ),
        pytest.param(
            lambda: cb.CatBoostRegressor(
                iterations=8, verbose=0, thread_count=1, allow_writing_files=False
            ),
            "reg",
            id="cat-reg",
        ),
    ]


def _fit(make: Callable[[], Any], target: str) -> Any:
    frame, y = _iris()
    if target == "reg":
        return make().fit(frame.drop(columns="petal_width"), frame["petal_width"])
    return make().fit(frame, NAMES[y] if target == "str" else y)


def _served_rows(model: Any, target: str) -> np.ndarray:
    rows = _rows()
    return rows[:, :3] if target == "reg" else rows


@pytest.mark.parametrize(("make", "target"), _estimators())
def test_sklearn_api_model_every_protocol(
    make: Callable[[], Any], target: str, tmp_path: Path
) -> None:
    estimator = _fit(make, target)
    path = tmp_path / "model.joblib"
    joblib.dump(estimator, path)
    model = load_model(path)
    rows = _served_rows(estimator, target)
    frame = pd.DataFrame(rows, columns=list(model.schema.feature_names or ()))
    labels = np.asarray(estimator.predict(frame)).ravel().tolist()
    assert model.schema.n_features == rows.shape[1]
    assert model.schema.missing is not None and all(m == "nan" for m in model.schema.missing)
    if target != "reg":
        assert model.schema.classes == tuple(np.asarray(estimator.classes_).tolist())
        assert model.schema.has_proba
    features = [[None if np.isnan(v) else v for v in row] for row in rows.tolist()]
    with TestClient(create_app(Settings(), model), raise_server_exceptions=False) as client:
        body: dict[str, Any] = {"features": features}
        if target != "reg":
            body["return"] = ["label", "proba"]
        got = client.post("/predict", json=body).json()
        assert got["predictions"] == pytest.approx(labels) if target == "reg" else labels
        if target != "reg":
            proba = np.asarray(estimator.predict_proba(frame))
            got_proba = [
                [p[str(c)] for c in model.schema.classes or ()] for p in got["probabilities"]
            ]
            np.testing.assert_allclose(got_proba, proba, rtol=1e-6)
        records = [dict(zip(frame.columns, row)) for row in features]
        for path_, request, key in [
            ("/predict", {"instances": records}, "predictions"),
            ("/v1/models/model:predict", {"instances": features}, "predictions"),
            ("/invocations", {"dataframe_records": records}, "predictions"),
        ]:
            answer = client.post(path_, json=request)
            assert answer.status_code == 200, answer.text
            assert answer.json()[key] == (pytest.approx(labels) if target == "reg" else labels)
        columns = [
            {"name": name, "shape": [len(rows)], "datatype": "FP64", "data": list(column)}
            for name, column in zip(frame.columns, zip(*features))
        ]
        v2 = client.post(
            "/v2/models/model/infer",
            json={"parameters": {"content_type": "pd"}, "inputs": columns},
        )
        assert v2.status_code == 200, v2.text
        data = v2.json()["outputs"][0]["data"]
        assert data == (pytest.approx(labels) if target == "reg" else labels)


def test_boosting_inside_a_column_transformer_pipeline(tmp_path: Path) -> None:
    frame, y = _iris()
    frame = frame.assign(size=np.where(frame["sepal_length"] > 5.8, "big", "small"))
    pre = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["size"]), remainder="passthrough"
    )
    pipeline = make_pipeline(pre, lgb.LGBMClassifier(n_estimators=8, verbose=-1))
    pipeline.fit(frame, NAMES[y])
    path = tmp_path / "pipe.joblib"
    joblib.dump(pipeline, path)
    model = load_model(path)
    assert model.schema.feature_kinds == ("number",) * 4 + ("string",)
    # Passed-through columns reach LightGBM, which takes NaN; the encoder ignores an unknown
    # (here: missing) size, which its tags and the load-time probe both say.
    assert model.schema.missing == ("nan",) * 5
    records = frame.head(5).to_dict(orient="records")
    records[0]["petal_length"] = None
    records[1]["size"] = None
    expected_frame = pd.DataFrame(records).astype({"petal_length": float})
    expected_frame["size"] = (
        expected_frame["size"].astype(object).where(expected_frame["size"].notna(), np.nan)
    )
    expected = pipeline.predict(expected_frame).tolist()
    with TestClient(create_app(Settings(), model)) as client:
        assert client.post("/predict", json={"instances": records}).json() == {
            "predictions": expected
        }


def _native(kind: str, tmp_path: Path) -> tuple[Path, Any, np.ndarray]:
    """(model file, the library's own model object, rows) for each native format."""
    frame, y = _iris()
    x = frame.to_numpy()
    if kind in ("xgb-json", "xgb-ubj"):
        model = xgb.XGBClassifier(n_estimators=8).fit(frame, y)
        path = tmp_path / ("model.json" if kind == "xgb-json" else "model.ubj")
        model.save_model(path)
        return path, model, x
    if kind == "lgbm-txt":
        booster = lgb.train(
            {"objective": "multiclass", "num_class": 3, "verbose": -1},
            lgb.Dataset(frame, y),
            num_boost_round=8,
        )
        path = tmp_path / "model.txt"
        booster.save_model(str(path))
        return path, booster, x
    if kind == "lgbm-reg":
        booster = lgb.train(
            {"objective": "regression", "verbose": -1},
            lgb.Dataset(x[:, :3], x[:, 3]),
            num_boost_round=8,
        )
        path = tmp_path / "reg.txt"
        booster.save_model(str(path))
        return path, booster, x[:, :3]
    model = cb.CatBoostClassifier(
        iterations=8, verbose=0, thread_count=1, allow_writing_files=False
    ).fit(frame, NAMES[y])
    path = tmp_path / "model.cbm"
    model.save_model(str(path))
    return path, model, x


@pytest.mark.parametrize("kind", ["xgb-json", "xgb-ubj", "lgbm-txt", "lgbm-reg", "cat-cbm"])
def test_native_files_serve_like_the_library(kind: str, tmp_path: Path) -> None:
    path, original, x = _native(kind, tmp_path)
    model = load_model(path)
    rows = x[::15]
    names = model.schema.feature_names
    given = pd.DataFrame(rows, columns=list(names)) if names else rows
    if kind.startswith("lgbm"):
        raw = original.predict(rows)
        expected = raw.argmax(axis=1).tolist() if raw.ndim == 2 else raw.tolist()
        assert names is None if kind == "lgbm-reg" else names == tuple(original.feature_name())
    else:
        expected = np.asarray(original.predict(given)).ravel().tolist()
        assert names == ("sepal_length", "sepal_width", "petal_length", "petal_width")
    with TestClient(create_app(Settings(), model)) as client:
        got = client.post("/predict", json={"features": rows.tolist()}).json()["predictions"]
    assert got == (pytest.approx(expected) if kind == "lgbm-reg" else expected)
    if kind == "cat-cbm":
        assert model.schema.classes == tuple(NAMES)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "restpredict", *args], capture_output=True, text=True, timeout=120
    )


def test_without_the_library_one_line_names_the_extra(tmp_path: Path) -> None:
    path, _, _ = _native("lgbm-txt", tmp_path)
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    (blocker / "lightgbm.py").write_text("raise ImportError('not installed here')\n")
    done = subprocess.run(
        [sys.executable, "-m", "restpredict", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": str(blocker)},
    )
    assert done.returncode == ExitCode.STARTUP
    assert "pip install 'restpredict[lightgbm]'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_broken_native_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "model.cbm"
    path.write_bytes(b"not a catboost model")
    done = _cli("info", str(path))
    assert done.returncode == ExitCode.STARTUP
    assert "not a loadable CatBoost model file" in done.stderr


def test_metadata_of_a_pickled_boosting_model(tmp_path: Path) -> None:
    path = tmp_path / "m.joblib"
    joblib.dump(_fit(lambda: xgb.XGBRegressor(n_estimators=4), "reg"), path)
    model: LoadedModel = load_model(path)
    assert model.metadata()["feature_nullable"] == [True, True, True]


@pytest.mark.parametrize("kind", ["xgb", "lgbm"])
def test_onnx_backend_declines_with_its_usual_warning(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from restpredict.model.compiled import compile_model

    make = (
        (lambda: xgb.XGBClassifier(n_estimators=4))
        if kind == "xgb"
        else (lambda: lgb.LGBMClassifier(n_estimators=4, verbose=-1))
    )
    path = tmp_path / "m.joblib"
    joblib.dump(_fit(make, "int"), path)
    model = load_model(path)
    with caplog.at_level("WARNING", logger="restpredict.compiled"):
        assert compile_model(model, Settings(backend="onnx")) is model
    assert "compiled backend not used" in caplog.text and "using scikit-learn" in caplog.text
