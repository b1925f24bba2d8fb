"""The built-in demo model, so ``restpredict serve`` works with no model file at all."""

from __future__ import annotations

import hashlib
import io

import joblib
import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from restpredict.model.loading import LoadedModel, from_estimator

__all__ = ["DEMO_NAME", "demo_model"]

DEMO_NAME = "iris-demo"


def demo_model() -> LoadedModel:
    """An iris classifier with string labels, trained from scikit-learn's bundled data."""
    iris = load_iris()
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pipeline.fit(iris.data, iris.target_names[iris.target])
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    return from_estimator(
        pipeline,
        name=DEMO_NAME,
        sha256=hashlib.sha256(buffer.getvalue()).hexdigest(),
        source="(built-in iris demo)",
        sklearn_trained=sklearn.__version__,
    )
