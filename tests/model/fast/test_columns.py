"""Data-frame fronts with string columns: the fast path answers as scikit-learn on a DataFrame."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder, StandardScaler

from restpredict.errors import RestPredictError
from restpredict.model.backend import backend_name, fast_model
from restpredict.model.fast.base import FastEstimator
from restpredict.model.loading import LoadedModel, from_estimator

NUMBERS = ["age", "hours", "income"]
STRINGS = ["city", "plan"]
CITIES = ["brest", "lille", "lyon", "nice", "paris"]
PLANS = ["free", "pro", "team"]


def _frame(n: int, seed: int, *, holes: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {
        "age": rng.normal(40, 10, n),
        "hours": rng.normal(40, 5, n),
        "income": rng.lognormal(10, 1, n),
        "city": rng.choice(CITIES, n).astype(object),
        "plan": rng.choice(PLANS, n).astype(object),
    }
    if holes:
        data["age"][rng.random(n) < 0.1] = np.nan
        data["city"][rng.random(n) < 0.1] = None
    return pd.DataFrame(data)


TRAIN = _frame(600, 0)
TRAIN_HOLES = _frame(600, 0, holes=True)
BINARY = ((TRAIN.age > 40) ^ (TRAIN.city == "paris")).to_numpy().astype(int)
LABELS = np.array(["low", "mid", "high"])[(TRAIN.hours > 38).astype(int) + (TRAIN.plan == "pro")]


def _numbers_then_strings(strings: Any, **kw: Any) -> ColumnTransformer:
    numbers = make_pipeline(SimpleImputer(), StandardScaler())
    return ColumnTransformer([("num", numbers, NUMBERS), ("cat", strings, STRINGS)], **kw)


# (pipeline factory, training frame, target)
CASES = [
    pytest.param(
        lambda: make_pipeline(
            _numbers_then_strings(OneHotEncoder(handle_unknown="ignore")),
            LogisticRegression(max_iter=1000),
        ),
        TRAIN_HOLES,
        BINARY,
        id="imputed-scaled-onehot-ignore-logistic",
    ),
    pytest.param(
        lambda: make_pipeline(
            ColumnTransformer(
                [
                    ("num", MinMaxScaler(), ["income", "age"]),
                    (
                        "cat",
                        make_pipeline(
                            SimpleImputer(strategy="most_frequent"),
                            OneHotEncoder(drop="first", sparse_output=False),
                        ),
                        STRINGS,
                    ),
                ],
                remainder="passthrough",
            ),
            LogisticRegression(max_iter=2000),
        ),
        TRAIN_HOLES.fillna({"age": 40.0, "hours": 40.0, "income": 1.0}),
        LABELS,
        id="minmax-string-imputer-onehot-drop-error-passthrough-multiclass",
    ),
    pytest.param(
        lambda: make_pipeline(
            ColumnTransformer(
                [("cat", OneHotEncoder(handle_unknown="ignore"), [3, 4])],
                remainder="passthrough",
            ),
            RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0),
        ),
        TRAIN,
        LABELS,
        id="onehot-by-position-passthrough-forest",
    ),
    pytest.param(
        lambda: make_pipeline(
            ColumnTransformer(
                [("num", StandardScaler(), NUMBERS[:2]), ("cat", OneHotEncoder(), ["city"])],
                remainder="drop",
            ),
            Ridge(),
        ),
        TRAIN.drop(columns="plan").assign(hours=TRAIN.hours.astype(int)),
        TRAIN.income.to_numpy(),
        id="remainder-drop-ridge",
    ),
    pytest.param(
        lambda: make_pipeline(
            OneHotEncoder(sparse_output=False, handle_unknown="ignore"),
            LogisticRegression(max_iter=1000),
        ),
        TRAIN[STRINGS],
        BINARY,
        id="onehot-alone-dense",
    ),
]


def wrap(estimator: Any) -> LoadedModel:
    return from_estimator(estimator, name="m", sha256="0" * 64, source="t", sklearn_trained=None)


def _outcome(model: LoadedModel, rows: np.ndarray, proba: bool) -> Any:
    try:
        return model.predict(rows, proba=proba)
    except RestPredictError as exc:
        return type(exc), exc.detail


def _check(model: LoadedModel, fast: LoadedModel, rows: np.ndarray, exact: bool = True) -> int:
    """Answers compared on the rows together and on three of them alone; refusals counted."""
    proba = model.schema.task == "classification"
    refused = 0
    for batch in (rows, rows[:1], rows[5:6], rows[9:10]):
        expected, got = _outcome(model, batch, proba), _outcome(fast, batch, proba)
        if isinstance(expected, tuple):
            assert got == expected  # the same refusal, scikit-learn's message word for word
            refused += 1
            continue
        assert np.array_equal(np.asarray(expected.labels), np.asarray(got.labels)) or not exact
        if not exact:
            np.testing.assert_allclose(expected.labels, got.labels, rtol=0, atol=1e-12)
        if proba:
            if exact:
                assert np.array_equal(expected.proba, got.proba)
            else:
                np.testing.assert_allclose(expected.proba, got.proba, rtol=0, atol=1e-12)
    return refused


def _rows(model: LoadedModel, frame: pd.DataFrame) -> np.ndarray:
    """A frame's values as restpredict hands them to the model: object rows in fitted order."""
    names = list(model.schema.feature_names or ())
    return frame[names].to_numpy(dtype=object)


def _threshold_rows(fitted: Any, model: LoadedModel, n: int = 200) -> np.ndarray:
    """Rows whose passed-through numbers sit at (and within rounding of) the forest's splits."""
    forest = fitted.steps[-1][1]
    encoded = fitted.steps[0][1].transform(TRAIN.iloc[:1]).shape[1] - len(NUMBERS)
    rng = np.random.default_rng(5)
    rows = _rows(model, _frame(n, 7))
    for j, name in enumerate(NUMBERS):
        thresholds = np.concatenate(
            [t.tree_.threshold[t.tree_.feature == encoded + j] for t in forest.estimators_]
        )
        if thresholds.size:
            picks = rng.choice(thresholds, size=n)
            nudge = rng.choice([-1e-9, 0.0, 1e-9, -1e-3, 1e-3], size=n)
            rows[:, list(model.schema.feature_names or ()).index(name)] = (
                picks + nudge * np.maximum(np.abs(picks), 1.0)
            ).tolist()
    return rows


@pytest.mark.parametrize(("factory", "train", "target"), CASES)
def test_string_fronts_answer_as_scikit_learn(
    factory: Callable[[], Any], train: pd.DataFrame, target: np.ndarray
) -> None:
    fitted = factory().fit(train, target)
    model = wrap(fitted)
    fast = fast_model(model)
    assert isinstance(fast.estimator, FastEstimator), "verification failed"
    assert backend_name(fast) == "fast"
    assert fast.estimator.exactness == "bit-identical"
    columns = list(train.columns)
    random = _rows(model, _frame(300, 3)[columns])
    _check(model, fast, random)
    _check(model, fast, _rows(model, train))
    unknown = random.copy()
    strings = [j for j, kind in enumerate(model.schema.feature_kinds or ()) if kind == "string"]
    unknown[::7, strings[0]] = "madrid"
    _check(model, fast, unknown)  # encoded as zeros, or refused with scikit-learn's message
    missing = _rows(model, _frame(300, 4, holes=True)[columns])
    _check(model, fast, missing)  # NaN and None where the model takes them, else refused
    if isinstance(fitted.steps[-1][1], RandomForestClassifier):
        _check(model, fast, _threshold_rows(fitted, model))


def test_unknown_category_refusal_is_scikit_learns() -> None:
    fitted = CASES[1].values[0]().fit(CASES[1].values[1], CASES[1].values[2])
    model = wrap(fitted)
    fast = fast_model(model)
    rows = _rows(model, _frame(4, 8))
    rows[2, model.schema.feature_names.index("city")] = "madrid"  # type: ignore[union-attr]
    expected, got = _outcome(model, rows, True), _outcome(fast, rows, True)
    assert isinstance(expected, tuple) and got == expected
    assert "Found unknown categories ['madrid'] in column 0" in expected[1]


def test_sparse_output_is_served_within_1e_12() -> None:
    front = _numbers_then_strings(OneHotEncoder(handle_unknown="ignore"), sparse_threshold=1.0)
    fitted = make_pipeline(front, LogisticRegression(max_iter=1000)).fit(TRAIN_HOLES, BINARY)
    model = wrap(fitted)
    fast = fast_model(model)
    assert isinstance(fast.estimator, FastEstimator)
    assert fast.estimator.exactness == "1e-12"
    assert fast.metadata()["fast_path"].endswith("(1e-12)")
    _check(model, fast, _rows(model, _frame(300, 3)), exact=False)


@pytest.mark.parametrize(
    "front",
    [
        pytest.param(
            lambda: _numbers_then_strings(OneHotEncoder(max_categories=3)),
            id="infrequent-categories",
        ),
        pytest.param(
            lambda: _numbers_then_strings(
                OneHotEncoder(handle_unknown="ignore"), transformer_weights={"num": 2.0}
            ),
            id="transformer-weights",
        ),
        pytest.param(
            lambda: ColumnTransformer(
                [
                    ("num", FunctionTransformer(np.log1p), ["income"]),
                    ("cat", OneHotEncoder(), STRINGS),
                ]
            ),
            id="function-transformer",
        ),
    ],
)
def test_unsupported_front_stays_on_scikit_learn(
    front: Callable[[], Any], caplog: pytest.LogCaptureFixture
) -> None:
    fitted = make_pipeline(front(), LogisticRegression(max_iter=1000)).fit(TRAIN, BINARY)
    model = wrap(fitted)
    with caplog.at_level(logging.INFO, logger="restpredict.model.backend"):
        assert fast_model(model) is model
    assert backend_name(model) == "sklearn"
    assert caplog.text.count("fast path not used") == 1
