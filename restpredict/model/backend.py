"""Which backend serves a loaded model: a fast path, ONNX Runtime or scikit-learn itself.

``auto`` (the default) puts the model on its fast path when one exists and, on this model's
own probe rows, answers exactly as scikit-learn does; ``onnx`` asks for the ONNX backend;
``sklearn`` keeps scikit-learn. Anything that cannot be verified stays on scikit-learn, with
one log line saying why.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from restpredict.model.compiled import compile_model
from restpredict.model.fast.probe import sample_rows
from restpredict.model.fast.select import differences, find_fast_path, unverified_version
from restpredict.model.loading import LoadedModel
from restpredict.settings import Settings

__all__ = ["backend_name", "fast_model", "select_backend"]

logger = logging.getLogger("restpredict.model.backend")

#: Single rows checked one at a time too: BLAS may sum a one-row product differently.
_SINGLE_ROWS = 3


def select_backend(model: LoadedModel, settings: Settings) -> LoadedModel:
    """The model on the configured backend, or on scikit-learn where that cannot be verified."""
    if settings.backend == "onnx":
        return compile_model(model, settings)
    if settings.backend == "auto":
        return fast_model(model)
    return model


def fast_model(model: LoadedModel) -> LoadedModel:
    """The model on its fast path if one fits and verifies; else unchanged, with one log line.

    The line is a warning when a fast path exists but cannot be used (verification failed, or
    scikit-learn is not the verified version); an estimator with no fast path is only noted.
    """
    version = unverified_version()
    fast = find_fast_path(model.estimator) if version is None else None
    if fast is None:
        reason = version or f"no fast path for {type(model.estimator).__name__}"
        level = logging.INFO if version is None else logging.WARNING
        logger.log(level, "fast path not used for %s: %s; using scikit-learn", model.name, reason)
        return model
    candidate = dataclasses.replace(model, estimator=fast, extra=dict(model.extra))
    failure = _verify(model, candidate)
    if failure is not None:
        logger.warning(
            "fast path not used for %s: %s failed verification: %s; using scikit-learn",
            model.name,
            fast.family,
            failure,
        )
        return model
    logger.info("fast path: %s serves on %s", model.name, fast.fast_path)
    return candidate


def backend_name(model: LoadedModel) -> str:
    """``fast``, ``onnx`` or ``sklearn``: what computes this model's answers (in /metadata)."""
    return str(getattr(model.estimator, "restpredict_backend", "sklearn"))


def _verify(reference: LoadedModel, candidate: LoadedModel) -> str | None:
    """None if ``candidate`` answers like ``reference`` on probe rows and the warm-up row."""
    rows = _probe_rows(reference)
    if rows is None:
        return "only models with numeric columns and a known width are verified"
    proba = reference.schema.has_proba
    batches = [rows, *(rows[i : i + 1] for i in range(_SINGLE_ROWS))]
    exactness = candidate.estimator.exactness
    compared = 0
    for batch in batches:
        try:
            expected = reference.predict(batch, labels=True, proba=proba)
        except Exception:
            continue  # rows scikit-learn itself refuses say nothing about the fast path
        try:
            got = candidate.predict(batch, labels=True, proba=proba)
        except Exception as exc:
            return f"raised {type(exc).__name__} where scikit-learn answered"
        for name in ("labels", "proba"):
            found = differences(getattr(expected, name), getattr(got, name), exactness)
            if found is not None:
                return f"{name}: {found} on {len(batch)} rows"
        compared += 1
    return None if compared else "scikit-learn answered none of the probe rows"


def _probe_rows(model: LoadedModel) -> np.ndarray | None:
    schema = model.schema
    if not schema.numeric_only or not schema.n_features:
        return None
    rows = sample_rows(model.estimator, schema.n_features)
    nullable = [j for j in range(schema.n_features) if schema.nullable(j)]
    if nullable:
        # Features that take missing values get NaN in about 15% of a second copy of the rows.
        holes = np.random.default_rng(1).random(size=(len(rows), len(nullable))) < 0.15
        missing = rows.copy()
        missing[:, nullable] = np.where(holes, np.nan, rows[:, nullable])
        rows = np.vstack([rows, missing])
    example: Any = schema.example
    if example is not None:
        rows = np.vstack([np.asarray([example], dtype=np.float64), rows])
    return rows
