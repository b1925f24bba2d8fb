"""Native model files of the gradient boosting libraries, as scikit-learn-API estimators.

XGBoost ``.json``/``.ubj``, LightGBM text models (``.txt``) and CatBoost ``.cbm`` are not
pickles: loading one runs no code from the file. Each is read from the bytes whose SHA-256
was checked and becomes an estimator with ``predict`` (and ``predict_proba`` for
classifiers), ``n_features_in_`` and, where the file stores them, feature names and classes,
so the schema, validation, protocols and batching treat it like any scikit-learn model.
XGBoost and CatBoost have scikit-learn wrappers that load their own files; a LightGBM text
model is wrapped here (labels are the class indices the file knows, 0..k-1). The library is
an extra: without it, one line names the ``pip install``.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from restpredict.errors import ModelLoadError

__all__ = ["NATIVE_SUFFIXES", "LightGBMBoosterClassifier", "LightGBMBoosterRegressor", "load"]

NATIVE_SUFFIXES = {".json": "xgboost", ".ubj": "xgboost", ".txt": "lightgbm", ".cbm": "catboost"}
_LABELS = {"xgboost": "XGBoost", "lightgbm": "LightGBM", "catboost": "CatBoost"}
_CATBOOST_CLASSIFIER_LOSSES = ("Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll")
_DEFAULT_NAME = re.compile(r"(Column_|f)?\d+")


def load(path: Path, data: bytes) -> Any:
    """The estimator a native model file holds; ModelLoadError if it cannot be read."""
    library = NATIVE_SUFFIXES[path.suffix.lower()]
    label = _LABELS[library]
    try:
        module = importlib.import_module(library)
    except ImportError:
        raise ModelLoadError(
            f"{path}: {label} model files need the {library} package: "
            f"pip install 'restpredict[{library}]'",
            code="missing_library",
        ) from None
    loader = {"xgboost": _xgboost, "lightgbm": _lightgbm, "catboost": _catboost}[library]
    try:
        return loader(module, data)
    except Exception as exc:  # each library raises its own error types for a bad file
        text = str(exc).strip().splitlines()
        reason = text[0] if text else type(exc).__name__
        raise ModelLoadError(f"{path}: not a loadable {label} model file ({reason})") from None


def _xgboost(xgb: Any, data: bytes) -> Any:
    booster = xgb.Booster()
    booster.load_model(bytearray(data))
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    classifier = objective.startswith(("binary:", "multi:"))
    estimator = xgb.XGBClassifier() if classifier else xgb.XGBRegressor()
    estimator.load_model(bytearray(data))
    return estimator


def _catboost(cb: Any, data: bytes) -> Any:
    probe = cb.CatBoost().load_model(blob=data)
    loss = str(probe.get_all_params().get("loss_function", ""))
    classifier = loss.split(":")[0] in _CATBOOST_CLASSIFIER_LOSSES
    estimator = cb.CatBoostClassifier() if classifier else cb.CatBoostRegressor()
    return estimator.load_model(blob=data)


def _lightgbm(lgb: Any, data: bytes) -> Any:
    booster = lgb.Booster(model_str=data.decode("utf-8"))
    objective = _lightgbm_objective(data)
    if objective in ("binary", "multiclass", "multiclassova"):
        return LightGBMBoosterClassifier.of(booster, objective)
    return LightGBMBoosterRegressor.of(booster, objective)


def _lightgbm_objective(data: bytes) -> str:
    for line in data.splitlines()[:64]:  # the header comes before the trees
        if line.startswith(b"objective="):
            return line.split(b"=", 1)[1].split()[0].decode()
    return ""


class _LightGBMBooster:
    """A LightGBM Booster with the fitted attributes and tags scikit-learn's checks read.

    Plain classes rather than scikit-learn subclasses: nothing here is fitted or cloned, and
    ``__sklearn_tags__``/``_estimator_type`` are all ``is_classifier`` and the missing-value
    tags read (LightGBM sends NaN down each split's default side).
    """

    _estimator_type = "regressor"
    booster_: Any
    objective_: str
    n_features_in_: int

    def _adopt(self, booster: Any, objective: str) -> None:
        self.booster_ = booster
        self.objective_ = objective
        self.n_features_in_ = int(booster.num_feature())
        names = [str(n) for n in booster.feature_name()]
        if not all(_DEFAULT_NAME.fullmatch(n) for n in names):
            self.feature_names_in_ = np.asarray(names, dtype=object)

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        classifier = self._estimator_type == "classifier"
        return Tags(
            estimator_type=self._estimator_type,
            target_tags=TargetTags(required=True),
            input_tags=InputTags(allow_nan=True),
            classifier_tags=ClassifierTags() if classifier else None,
            regressor_tags=None if classifier else RegressorTags(),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(objective={self.objective_!r})"

    def _raw(self, X: Any) -> np.ndarray:
        return np.asarray(self.booster_.predict(X))


class LightGBMBoosterClassifier(_LightGBMBooster):
    """A LightGBM text model of a binary or multiclass objective; classes 0..k-1."""

    _estimator_type = "classifier"
    classes_: np.ndarray

    @classmethod
    def of(cls, booster: Any, objective: str) -> LightGBMBoosterClassifier:
        """Wrap a loaded booster."""
        estimator = cls()
        estimator._adopt(booster, objective)
        width = 2 if objective == "binary" else int(booster.num_model_per_iteration())
        estimator.classes_ = np.arange(width)
        return estimator

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, as LGBMClassifier.predict_proba gives them."""
        raw = self._raw(X)
        return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class, as LGBMClassifier.predict decides it."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])


class LightGBMBoosterRegressor(_LightGBMBooster):
    """A LightGBM text model of any other objective (regression, ranking...)."""

    @classmethod
    def of(cls, booster: Any, objective: str) -> LightGBMBoosterRegressor:
        """Wrap a loaded booster."""
        estimator = cls()
        estimator._adopt(booster, objective)
        return estimator

    def predict(self, X: Any) -> np.ndarray:
        """The booster's predictions."""
        return self._raw(X)
