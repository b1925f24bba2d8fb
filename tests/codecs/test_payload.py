"""payload.decode_table (the tabular wire formats) and rows_to_query, without HTTP."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from restpredict.codecs.payload import decode_json, decode_table, rows_to_query
from restpredict.errors import InputError, MalformedBodyError
from restpredict.model.loading import LoadedModel


def table(value: Any, model: LoadedModel, **kwargs: Any) -> list[Any]:
    return decode_table(msgspec.json.encode(value), model.schema, where="w", **kwargs)


def test_rows_records_and_columns(iris: LoadedModel, frame_model: LoadedModel) -> None:
    assert table([[1, 2, 3, 4]], iris) == [[1.0, 2.0, 3.0, 4.0]]
    assert table([{"a": 1}], frame_model) == [{"a": 1.0}]
    assert table({"a": [1, 2], "b": ["x", "y"]}, frame_model) == [
        {"a": 1.0, "b": "x"},
        {"a": 2.0, "b": "y"},
    ]


def test_columns_name_positional_rows_for_a_dataframe_model(
    iris: LoadedModel, frame_model: LoadedModel
) -> None:
    assert table([[1, "red"]], frame_model, columns=["size", "color"]) == [
        {"size": 1.0, "color": "red"}
    ]
    assert table([[1, 2, 3, 4]], iris, columns=["a", "b", "c", "d"]) == [[1.0, 2.0, 3.0, 4.0]]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param([1, 2, 3, 4], '"w" must be a list of rows', id="flat"),
        pytest.param(5, '"w" must be a list of rows', id="scalar"),
        pytest.param([], '"w" is empty', id="empty"),
        pytest.param(
            [[1, "a", 3, 4]], "Expected `float | null`, got `str` - at `w[0][1]`", id="text"
        ),
        pytest.param({"a": [1], "b": [1, 2]}, "different lengths (1, 2)", id="ragged"),
    ],
)
def test_shapes_that_are_not_tables(iris: LoadedModel, value: Any, message: str) -> None:
    with pytest.raises(InputError) as caught:
        table(value, iris)
    assert message in caught.value.detail


def test_a_field_of_the_wrong_type_is_named() -> None:
    with pytest.raises(InputError, match=r"Expected `object`, got `int` - at `params`"):
        decode_json(b"3", dict[str, Any], "params")
    with pytest.raises(MalformedBodyError):
        decode_json(b"{", dict[str, Any])


def test_rows_beyond_float_range_are_refused_not_crashed(iris: LoadedModel) -> None:
    with pytest.raises(InputError, match="expected a finite number"):
        rows_to_query([[10**400, 1, 2, 3]], iris.schema, max_rows=10)
