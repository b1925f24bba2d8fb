"""The two models under test, trained on scikit-learn's bundled breast-cancer data (no network)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

Features = NDArray[np.float64]


def _logistic_regression() -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def _random_forest() -> Any:
    return RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0)


def _hist_boosting() -> Any:
    return HistGradientBoostingClassifier(random_state=0)


def _lightgbm() -> Any:
    # A gradient boosting model people serve (restpredict[lightgbm]); imported only when asked
    # for, so a run of the default models needs no LightGBM.
    import lightgbm

    return lightgbm.LGBMClassifier(n_estimators=100, num_leaves=31, verbose=-1, random_state=0)


#: Short name -> estimator factory. The short names label the results.
MODELS: dict[str, Callable[[], Any]] = {
    "lr": _logistic_regression,
    "rf": _random_forest,
    "hgb": _hist_boosting,
    "lgbm": _lightgbm,
}

#: The models a run measures unless ``--models`` names others (``hgb``, ``lgbm`` only when asked).
DEFAULT_MODELS = ("lr", "rf")

#: A placeholder model name for servers that load no model (the ceiling).
NO_MODEL = "-"


def load_features() -> tuple[Features, NDArray[np.int64]]:
    """The breast-cancer features (569 x 30) and labels."""
    data = load_breast_cancer()
    return np.asarray(data.data, dtype=np.float64), np.asarray(data.target, dtype=np.int64)


def request_rows() -> Features:
    """The features in a fixed shuffled order, so that any prefix mixes both classes.

    The data set is sorted in runs of one class; unshuffled, the first 20 rows hold one benign.
    """
    features, _ = load_features()
    return features[np.random.default_rng(0).permutation(len(features))]


def train_and_save(names: tuple[str, ...], directory: Path) -> dict[str, tuple[Any, Path]]:
    """Fit each named model on the full data set and dump it with joblib into ``directory``."""
    features, labels = load_features()
    saved: dict[str, tuple[Any, Path]] = {}
    for name in names:
        model = MODELS[name]().fit(features, labels)
        path = directory / f"{name}.joblib"
        joblib.dump(model, path)
        saved[name] = (model, path)
    return saved
