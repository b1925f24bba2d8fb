"""Which features a model takes as missing (JSON null), and as what: NaN or None.

scikit-learn records this in its estimator tags (``input_tags.allow_nan``): a
``HistGradientBoostingRegressor`` or a ``SimpleImputer`` says yes, a ``LogisticRegression``
says no. A Pipeline is asked through its first step and a ColumnTransformer column by
column, through the transformer that first sees each column; a string column gets the
marker its fitted imputer (``missing_values``) or encoder (a learned None category) uses.
A tag only says the first step accepts NaN, not that the steps after it do (a
``StandardScaler`` passes NaN through to whatever follows), so the candidates are then
confirmed by the model's own predict on its example row, which turns the tags into what
this model, fitted as it is, actually takes. Estimators without tags (not scikit-learn)
are asked by the same probe.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from restpredict.model.schema import ColumnKind, Missing, Scalar, column_names

__all__ = ["MAX_PROBED", "missing_support"]

MAX_PROBED = 256
"""Candidate features beyond which a failed joint probe is not split column by column
(a start-up cost bound); they are then all refused."""

Probe = Callable[[np.ndarray], Any]


def missing_support(
    estimator: Any,
    n_features: int | None,
    names: tuple[str, ...] | None,
    kinds: tuple[ColumnKind, ...] | None,
    example: tuple[Scalar, ...] | None,
    predict: Probe,
) -> tuple[Missing, ...] | None:
    """Per feature: refused, or the marker (NaN or None) the model takes for a null.

    ``predict`` runs the model on an object matrix of rows (as a request would reach it)
    and raises, or returns non-finite outputs, when the model cannot take them.
    """
    if n_features is None or example is None:
        return None
    candidates = _candidates(estimator, n_features, names, kinds)
    chosen = [j for j, marker in enumerate(candidates) if marker != "refused"]
    accepted = _confirmed(chosen, candidates, example, predict)
    return tuple(m if j in accepted else "refused" for j, m in enumerate(candidates))


def _candidates(
    estimator: Any,
    n_features: int,
    names: tuple[str, ...] | None,
    kinds: tuple[ColumnKind, ...] | None,
) -> list[Missing]:
    columns = list(names) if names is not None else [str(j) for j in range(n_features)]
    steps = _steps(estimator)
    first, rest = steps[0], steps[1:]
    routes = getattr(first, "transformers_", None)
    if routes is None:
        accepts = _allow_nan(first) and not _refused_after_scaling(steps)
        return [_marker(first, 0, kinds, j) if accepts else "refused" for j in range(n_features)]
    # Fitted ColumnTransformers stand an identity transformer in for "passthrough" (sklearn
    # >= 1.8); the constructor's specs still say what was asked for.
    specs = {name: spec for name, spec, _ in getattr(first, "transformers", ())}
    specs["remainder"] = getattr(first, "remainder", None)
    found: dict[str, Missing] = {}
    for name, fitted, selected in routes:
        spec = specs.get(name)
        transformer = spec if isinstance(spec, str) else fitted
        for position, column in enumerate(column_names(selected, columns)):
            if column in found:
                continue
            if isinstance(transformer, str):
                # "drop": the value is never used; "passthrough": the next step decides.
                accepts = transformer == "drop" or (bool(rest) and _allow_nan(rest[0]))
                owner = rest[0] if rest and transformer != "drop" else None
            else:
                owner = _steps(transformer)[0]
                accepts = _allow_nan(owner)
            j = columns.index(column) if column in columns else -1
            if j >= 0:
                found[column] = _marker(owner, position, kinds, j) if accepts else "refused"
    return [found.get(column, "refused") for column in columns]


def _steps(estimator: Any) -> list[Any]:
    """The steps of a (nested) Pipeline that do something, in order; else the estimator."""
    steps = getattr(estimator, "steps", None)
    if steps is None:
        return [estimator]
    flat: list[Any] = []
    for _, step in steps:
        if step is not None and step != "passthrough":
            flat.extend(_steps(step))
    return flat or [estimator]


#: scikit-learn scalers whose ``transform`` keeps a NaN a NaN, in the same place.
_KEEPS_NAN = frozenset({"StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler"})


def _refused_after_scaling(steps: list[Any]) -> bool:
    """Whether NaN passes unchanged through leading scalers into a scikit-learn estimator
    whose tag refuses it (``StandardScaler`` then ``LogisticRegression``).

    Such a model refuses a null in every feature, which the probe would otherwise learn from
    twice as many failing predictions as features (59 for 30 features, ~20-50 ms of start-up).
    Only scikit-learn's own classes are trusted with this; anything else is probed.
    """
    for step in steps:
        kind = type(step)
        if not kind.__module__.startswith("sklearn."):
            return False
        if kind.__name__ not in _KEEPS_NAN or not kind.__module__.startswith(
            "sklearn.preprocessing"
        ):
            return not _allow_nan(step)
    return False


def _allow_nan(estimator: Any) -> bool:
    """scikit-learn's tag; an estimator without tags is left for the probe to decide."""
    from sklearn.utils import get_tags

    try:
        return bool(get_tags(estimator).input_tags.allow_nan)
    except (AttributeError, TypeError, ValueError):
        return True


def _marker(owner: Any, position: int, kinds: tuple[ColumnKind, ...] | None, j: int) -> Missing:
    """NaN for numbers; for text, None where the fitted imputer or encoder counts None."""
    if kinds is None or kinds[j] != "string" or owner is None:
        return "nan"
    if hasattr(owner, "missing_values"):
        return "none" if owner.missing_values is None else "nan"
    learned = getattr(owner, "categories_", None)
    if learned is not None and position < len(learned):
        values = np.asarray(learned[position]).tolist()
        if any(v is None for v in values):
            return "none"
    return "nan"


def _confirmed(
    chosen: list[int],
    candidates: list[Missing],
    example: tuple[Scalar, ...],
    predict: Probe,
) -> set[int]:
    """The candidates the model really takes missing, split in halves when a probe fails."""
    if not chosen:
        return set()
    if _works(chosen, candidates, example, predict):
        return set(chosen)
    if len(chosen) == 1 or len(chosen) > MAX_PROBED:
        return set()
    half = len(chosen) // 2
    return _confirmed(chosen[:half], candidates, example, predict) | _confirmed(
        chosen[half:], candidates, example, predict
    )


def _works(
    columns: list[int], candidates: list[Missing], example: tuple[Scalar, ...], predict: Probe
) -> bool:
    row = np.array([example], dtype=object)
    for j in columns:
        row[0, j] = None if candidates[j] == "none" else math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a probe that warns is judged by its outcome
        try:
            out = np.asarray(predict(row))
        except Exception:
            return False
    return out.dtype.kind not in "fc" or bool(np.isfinite(out).all())
