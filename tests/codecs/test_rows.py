"""Reading input rows from CSV, JSON and JSON Lines, in chunks."""

from __future__ import annotations

import io

import pytest

from restpredict.codecs.rows import chunks, detect_format, parse_features
from restpredict.errors import InputError
from restpredict.model.loading import LoadedModel


def test_csv_with_a_numeric_first_row_has_no_header(iris: LoadedModel) -> None:
    stream = io.StringIO("1,2,3,4\n5,6,7,8\n9,10,11,12\n")
    assert list(chunks(stream, "csv", iris.schema, 2)) == [
        [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]],
        [[9.0, 10.0, 11.0, 12.0]],
    ]


def test_csv_header_is_skipped_for_a_positional_model(iris: LoadedModel) -> None:
    stream = io.StringIO("a,b,c,d\n1,2,3,4\n")
    assert list(chunks(stream, "csv", iris.schema, 10)) == [[[1.0, 2.0, 3.0, 4.0]]]


def test_csv_by_name_keeps_strings_for_string_columns(frame_model: LoadedModel) -> None:
    stream = io.StringIO("color,weight,size,ignored\nred,5.5,10,x\n")
    rows = next(chunks(stream, "csv", frame_model.schema, 10))
    assert rows == [{"size": 10.0, "color": "red", "weight": 5.5}]


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        pytest.param(
            "10,red,5\n11,blue,6\n", [[10.0, "red", 5.0], [11.0, "blue", 6.0]], id="no-header"
        ),
        pytest.param("a,b,c\n10,red,5\n", [[10.0, "red", 5.0]], id="unusable-header"),
        pytest.param("10,1,5\n", [[10.0, "1", 5.0]], id="digits-in-a-string-column"),
    ],
)
def test_csv_without_names_types_columns_by_kind(
    frame_model: LoadedModel, text: str, rows: list[list[object]]
) -> None:
    """A headerless first row is data when its numeric columns hold numbers (found by fuzzing)."""
    assert next(chunks(io.StringIO(text), "csv", frame_model.schema, 10)) == rows


def test_csv_row_with_wrong_width(frame_model: LoadedModel) -> None:
    stream = io.StringIO("color,weight,size\nred,5.5\n")
    with pytest.raises(InputError, match="CSV line 2: 2 values, but the header has 3"):
        list(chunks(stream, "csv", frame_model.schema, 10))


def test_jsonl_reports_the_bad_line(iris: LoadedModel) -> None:
    stream = io.StringIO("[1,2,3,4]\n\n{oops\n")
    with pytest.raises(InputError, match="line 3: not valid JSON"):
        list(chunks(stream, "jsonl", iris.schema, 10))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1,2,3,4]", [[[1, 2, 3, 4]]]),
        ('{"features": [[1,2,3,4],[5,6,7,8]]}', [[[1, 2, 3, 4], [5, 6, 7, 8]]]),
        ('{"instances": [{"a": 1}]}', [[{"a": 1}]]),
    ],
)
def test_json_documents(iris: LoadedModel, text: str, expected: list) -> None:
    assert list(chunks(io.StringIO(text), "json", iris.schema, 10)) == expected


def test_format_detection() -> None:
    assert detect_format("rows.CSV", None) == "csv"
    assert detect_format("rows.ndjson", None) == "jsonl"
    assert detect_format("-", None) == "jsonl"
    assert detect_format("rows.txt", "csv") == "csv"
    with pytest.raises(InputError, match="cannot tell the format"):
        detect_format("rows.txt", None)


def test_parse_features() -> None:
    assert parse_features("5.1, 3.5,1.4,0.2") == [5.1, 3.5, 1.4, 0.2]
    assert parse_features('[1, "red", 2]') == [1, "red", 2]
    assert parse_features("1,inf") == [1.0, "inf"]  # left as text for validation to refuse
    with pytest.raises(InputError, match="not a JSON array"):
        parse_features("[1,")
