"""What a fitted estimator expects and returns, derived from its fitted attributes.

The schema drives request validation, ``/metadata``, the startup panel and the
container config, so it is computed once, at load time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from sklearn.base import is_classifier, is_regressor

__all__ = [
    "ColumnKind",
    "Missing",
    "ModelSchema",
    "Scalar",
    "column_categories",
    "column_names",
    "describe_estimator",
    "infer_schema",
    "known_categories",
    "schema_changes",
    "with_signature",
]

ColumnKind = Literal["number", "string"]
Missing = Literal["refused", "nan", "none"]
"""How a feature takes a JSON null: refused, or passed to the model as NaN or as None."""
Scalar = str | int | float | bool
_NAN = float("nan")
Task = Literal["classification", "regression", "clustering", "outlier_detection", "other"]


@dataclass(frozen=True)
class ModelSchema:
    """The input and output contract of one fitted estimator."""

    n_features: int | None
    feature_names: tuple[str, ...] | None
    feature_kinds: tuple[ColumnKind, ...] | None
    classes: tuple[Scalar, ...] | None
    has_proba: bool
    task: Task
    estimator: str
    example: tuple[Scalar, ...] | None
    missing: tuple[Missing, ...] | None = None
    #: The names came from an MLflow signature, not from the model: requests are checked and
    #: documented by name, but the model still gets the arrays it was fitted on.
    signature_names: bool = False

    def nullable(self, index: int) -> bool:
        """Whether feature ``index`` takes a missing value (JSON null)."""
        return self.missing is not None and self.missing[index] != "refused"

    @property
    def any_nullable(self) -> bool:
        """True when at least one feature takes a missing value."""
        return self.missing is not None and any(m != "refused" for m in self.missing)

    def missing_value(self, index: int) -> float | None:
        """What the model gets for a null in feature ``index``: NaN, or None where the
        fitted imputer or encoder of a string column counts None as missing."""
        return None if self.missing is not None and self.missing[index] == "none" else _NAN

    def feature_label(self, index: int) -> str:
        """The feature's name for messages, or its position when the model has no names."""
        return repr(self.feature_names[index]) if self.feature_names else str(index)

    @property
    def numeric_only(self) -> bool:
        """True when every column is numeric, so requests can take the NumPy fast path."""
        return self.feature_kinds is None or all(k == "number" for k in self.feature_kinds)

    @property
    def wants_frame(self) -> bool:
        """True when the model was fitted on a DataFrame and should get one back."""
        return self.feature_names is not None and not self.signature_names


def infer_schema(estimator: Any) -> ModelSchema:
    """Read n_features_in_, feature_names_in_, classes_ and the task off a fitted estimator."""
    n_features = getattr(estimator, "n_features_in_", None)
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        names = _stored_names(estimator)
    feature_names = tuple(str(n) for n in names) if names is not None else None
    stored = getattr(estimator, "feature_names_", None)  # CatBoost (0 in n_features_in_
    if not n_features and isinstance(stored, list) and stored:  # once unpickled)
        n_features = len(stored)
    if not n_features and feature_names is not None:
        n_features = len(feature_names)
    kinds: tuple[ColumnKind, ...] | None = None
    example: tuple[Scalar, ...] | None = None
    if feature_names is not None:
        strings = string_columns(estimator, feature_names)
        kinds = tuple("string" if n in strings else "number" for n in feature_names)
        example = tuple(strings.get(n, 0.0) for n in feature_names)
    elif n_features is not None:
        example = (0.0,) * int(n_features)
    classes = getattr(estimator, "classes_", None) if is_classifier(estimator) else None
    return ModelSchema(
        n_features=int(n_features) if n_features is not None else None,
        feature_names=feature_names,
        feature_kinds=kinds,
        classes=tuple(np.asarray(classes).tolist()) if classes is not None else None,
        has_proba=hasattr(estimator, "predict_proba"),
        task=_task(estimator),
        estimator=describe_estimator(estimator),
        example=example,
    )


# MLflow column types (mlflow.types.DataType) a JSON number or a JSON string carries.
_SIGNATURE_KINDS: dict[str, ColumnKind] = {
    **dict.fromkeys(("double", "float", "long", "integer", "boolean"), "number"),
    "string": "string",
}


def with_signature(
    schema: ModelSchema, names: tuple[str, ...], types: tuple[str, ...]
) -> ModelSchema:
    """The schema with an MLflow signature's input names and kinds, where the model has none.

    A model fitted on a DataFrame keeps its own names (they are what it checks); a signature
    whose column count differs from the model's, or with a type JSON cannot carry (binary,
    datetime), is ignored rather than trusted over the model.
    """
    if schema.feature_names is not None or not names or len(types) != len(names):
        return schema
    if schema.n_features is not None and schema.n_features != len(names):
        return schema
    if not all(t in _SIGNATURE_KINDS for t in types):
        return schema
    return replace(
        schema,
        n_features=len(names),
        feature_names=names,
        feature_kinds=tuple(_SIGNATURE_KINDS[t] for t in types),
        example=schema.example if schema.example is not None else (0.0,) * len(names),
        signature_names=True,
    )


def _stored_names(estimator: Any) -> list[str] | None:
    """CatBoost keeps the names it was fitted with in ``feature_names_`` (positions as
    "0", "1"... when it had none, which stay positional here)."""
    names = getattr(estimator, "feature_names_", None)
    if not isinstance(names, list) or not names:
        return None
    if all(str(n) == str(i) for i, n in enumerate(names)):
        return None
    return [str(n) for n in names]


def describe_estimator(estimator: Any) -> str:
    """``Pipeline(StandardScaler, LogisticRegression)`` rather than a 40-line repr."""
    steps = getattr(estimator, "steps", None)
    if steps is not None:
        inner = ", ".join(describe_estimator(step) for _, step in steps)
        return f"{type(estimator).__name__}({inner})"
    return type(estimator).__name__


def string_columns(estimator: Any, names: tuple[str, ...]) -> dict[str, Scalar]:
    """Columns that hold strings, each with one category the model knows.

    scikit-learn does not record input dtypes, so this is read from what the
    encoders and imputers learned: categories or fill values of object dtype.
    """
    found: dict[str, Scalar] = {}
    for column, values in _learned_values(estimator, names):
        if values.dtype.kind in "OUS" and column not in found:
            strings = [v for v in values.tolist() if isinstance(v, str)]
            found[column] = strings[0] if strings else ""
    return found


def known_categories(estimator: Any, names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """String columns whose encoder refuses values it has not seen, with the ones it knows.

    An encoder with ``handle_unknown="error"`` (OneHotEncoder's and OrdinalEncoder's default)
    makes any other string a rejected request, so the API documents these as enums.
    """
    found: dict[str, tuple[str, ...]] = {}
    for transformer, columns in _column_routes(estimator, names):
        for step in _steps(transformer):
            learned = getattr(step, "categories_", None)
            if learned is None or getattr(step, "handle_unknown", None) != "error":
                continue
            for column, values in zip(columns, learned):
                strings = tuple(v for v in np.asarray(values).tolist() if isinstance(v, str))
                if strings and column not in found:
                    found[column] = strings
    return found


def column_categories(estimator: Any, names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """String columns with every string their encoders and imputers learned (probe rows)."""
    found: dict[str, set[str]] = {}
    for column, values in _learned_values(estimator, names):
        strings = {v for v in values.tolist() if isinstance(v, str)}
        if strings:
            found.setdefault(column, set()).update(strings)
    return {column: tuple(sorted(values)) for column, values in found.items()}


def _learned_values(estimator: Any, names: tuple[str, ...]) -> Iterator[tuple[str, np.ndarray]]:
    """(input column, values learned for it) from encoders' categories and imputers' fill
    values, in step order: what tells a string column from a numeric one."""
    for transformer, columns in _column_routes(estimator, names):
        for step in _steps(transformer):
            learned = getattr(step, "categories_", None)
            if learned is None:
                stats = getattr(step, "statistics_", None)
                learned = list(stats.reshape(-1, 1)) if stats is not None else None
            for column, values in zip(columns, learned or ()):
                yield column, np.asarray(values)


def _column_routes(estimator: Any, names: tuple[str, ...]) -> list[tuple[Any, list[str]]]:
    """(transformer, input columns) pairs for the estimator's first step."""
    first = estimator
    while getattr(first, "steps", None):
        first = first.steps[0][1]
    routes = getattr(first, "transformers_", None)
    if routes is None:
        return [(first, list(names))]
    pairs = []
    for _, transformer, columns in routes:
        if isinstance(transformer, str):
            continue
        pairs.append((transformer, column_names(columns, names)))
    return pairs


def column_names(columns: Any, names: Sequence[str]) -> list[str]:
    """The input columns a ColumnTransformer's column selection names (none for a callable
    selector: what it picks is known only from data)."""
    if callable(columns):
        return []
    selected = np.arange(len(names))[columns] if isinstance(columns, slice) else columns
    selected = np.atleast_1d(np.asarray(selected))
    if selected.dtype.kind == "b":
        return [n for n, keep in zip(names, selected) if keep]
    if selected.dtype.kind in "iu":
        return [names[i] for i in selected]
    return [str(c) for c in selected]


def _steps(transformer: Any) -> list[Any]:
    steps = getattr(transformer, "steps", None)
    return [s for _, s in steps] if steps is not None else [transformer]


def _task(estimator: Any) -> Task:
    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    kind = getattr(estimator, "_estimator_type", None)
    try:
        from sklearn.utils import get_tags

        kind = get_tags(estimator).estimator_type or kind
    except (ImportError, AttributeError, TypeError, ValueError):
        pass
    if kind == "clusterer":
        return "clustering"
    if kind == "outlier_detector":
        return "outlier_detection"
    return "other"


def schema_changes(old: ModelSchema, new: ModelSchema) -> list[str]:
    """How ``new`` would answer clients of ``old`` differently: its inputs (feature count,
    names, kinds) or its outputs (task, classes, probabilities); empty when they agree."""
    changes = []
    for what, before, after in (
        ("feature count", old.n_features, new.n_features),
        ("feature names", old.feature_names, new.feature_names),
        ("feature kinds", old.feature_kinds, new.feature_kinds),
        ("task", old.task, new.task),
        ("classes", old.classes, new.classes),
        ("probabilities", old.has_proba, new.has_proba),
    ):
        if before != after:
            changes.append(f"{what} {_shown(before)} -> {_shown(after)}")
    return changes


def _shown(value: Any) -> str:
    """A value for a one-line message: long tuples cut short."""
    if isinstance(value, tuple) and len(value) > 6:
        return f"({', '.join(map(repr, value[:5]))}, ... {len(value)} in all)"
    return repr(value) if isinstance(value, tuple) else str(value)
