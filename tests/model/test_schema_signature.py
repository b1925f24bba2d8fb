"""An MLflow signature's names and kinds in the schema, only where the model has none."""

from __future__ import annotations

import pytest

from restpredict.model.schema import ModelSchema, with_signature

NAMES = ("a", "b", "c")


def schema(**changes: object) -> ModelSchema:
    base: dict[str, object] = {
        "n_features": 3,
        "feature_names": None,
        "feature_kinds": None,
        "classes": None,
        "has_proba": False,
        "task": "regression",
        "estimator": "Ridge",
        "example": (0.0, 0.0, 0.0),
    }
    return ModelSchema(**{**base, **changes})  # type: ignore[arg-type]


def test_names_and_kinds_from_the_signature() -> None:
    got = with_signature(schema(), NAMES, ("double", "long", "string"))
    assert got.feature_names == NAMES
    assert got.feature_kinds == ("number", "number", "string")
    assert got.signature_names and not got.wants_frame
    assert got.example == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("base", "types"),
    [
        pytest.param(schema(feature_names=("x", "y", "z")), ("double",) * 3, id="model-names"),
        pytest.param(schema(n_features=4), ("double",) * 3, id="count-differs"),
        pytest.param(schema(), ("double", "binary", "double"), id="binary"),
        pytest.param(schema(), ("double",) * 2, id="types-short"),
    ],
)
def test_the_model_wins_or_the_signature_is_ignored(
    base: ModelSchema, types: tuple[str, ...]
) -> None:
    assert with_signature(base, NAMES, types) == base
