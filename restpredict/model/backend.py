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
from restpredict.model.schema import column_categories
from restpredict.settings import Settings

__all__ = ["backend_label", "backend_name", "fast_model", "select_backend"]

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


def backend_label(model: LoadedModel) -> str:
    """``sklearn``, ``onnx``, or ``fast: forest (bit-identical)``: the backend, in one phrase."""
    name = backend_name(model)
    path = getattr(model.estimator, "fast_path", None) if name == "fast" else None
    return f"{name}: {path}" if path else name


def _verify(reference: LoadedModel, candidate: LoadedModel) -> str | None:
    """None if ``candidate`` answers like ``reference`` on probe rows and the warm-up row."""
    probes = _probe_rows(reference)
    if probes is None:
        return "only models with a known width (and names, for string columns) are verified"
    proba = reference.schema.has_proba
    batches = [*probes, *(probes[0][i : i + 1] for i in range(_SINGLE_ROWS))]
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


def _probe_rows(model: LoadedModel) -> list[np.ndarray] | None:
    """Batches to compare on, the first one also row by row."""
    schema = model.schema
    if not schema.n_features:
        return None
    if not schema.numeric_only:
        return _mixed_probe_rows(model)
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
    return [rows]


def _mixed_probe_rows(model: LoadedModel) -> list[np.ndarray] | None:
    """Batches of numbers and strings: known categories, then unknown strings, then missing.

    Numbers are drawn wide (most fronts scale them); strings from what the model's encoders
    learned. Separate batches, because scikit-learn refuses a whole batch where an encoder
    refuses unknown strings (such batches are skipped), and one in eight values of a string
    column is unknown in the second; the third copies the first with missing values where the
    schema takes them.
    """
    schema = model.schema
    names, kinds = schema.feature_names, schema.feature_kinds
    if names is None or kinds is None:
        return None
    known = column_categories(model.estimator, names)
    rng = np.random.default_rng(2)
    n = 256
    rows = np.empty((n, len(names)), dtype=object)
    for j, (name, kind) in enumerate(zip(names, kinds)):
        if kind == "number":
            scale = rng.choice([1.0, 10.0, 1000.0], size=n)
            rows[:, j] = (rng.normal(0.0, 1.0, size=n) * scale).tolist()
            continue
        choices = list(known.get(name, ())) or ["a"]
        picks = rng.choice(len(choices), size=n)
        rows[:, j] = [choices[k] for k in picks]
    unknowns = rows.copy()
    for j, kind in enumerate(kinds):
        if kind == "string":
            unknowns[rng.random(n) < 0.125, j] = "\x00not a category"
    batches = [rows, unknowns]
    nullable = [j for j in range(len(names)) if schema.nullable(j)]
    if nullable:
        holes = rng.random(size=(n, len(nullable))) < 0.15
        missing = rows.copy()
        for k, j in enumerate(nullable):
            fill = np.nan if kinds[j] == "number" else schema.missing_value(j)
            missing[holes[:, k], j] = fill
        batches.append(missing)
    if schema.example is not None:
        batches[0] = np.vstack([np.array([schema.example], dtype=object), rows])
    return batches
