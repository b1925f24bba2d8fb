"""Batch validation applies the server's rules: the same rows pass and fail as in /predict."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from restpredict.batch.validate import Layout, check_batch, check_rows, plan_layout
from restpredict.codecs.payload import rows_to_query
from restpredict.errors import InputError
from restpredict.model.loading import LoadedModel, from_estimator

IRIS = ("a", "b", "c", "d")
MISSING = (
    "feature {!r} is missing (null), but Pipeline(StandardScaler, LogisticRegression) does not "
    "accept missing values there; send a value"
)


@pytest.fixture(scope="module")
def imputed() -> LoadedModel:
    """A DataFrame pipeline whose imputers take nulls in "a" and "color", not in "b"."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=120),
            "color": rng.choice(["red", "green", "blue"], 120).astype(object),
            "b": rng.normal(size=120),
        }
    )
    frame.loc[::6, "a"] = np.nan
    frame.loc[::7, "color"] = np.nan
    labels = np.where((frame["color"] == "red") | (frame["b"] > 0.5), "yes", "no")
    pre = make_column_transformer(
        (SimpleImputer(strategy="median"), ["a"]),
        (
            make_pipeline(
                SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
            ),
            ["color"],
        ),
        (StandardScaler(), ["b"]),
    )
    model = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(frame, labels)
    return from_estimator(model, name="imputed", sha256="", source="memory", sklearn_trained=None)


def _server_accepts(model: LoadedModel, record: dict[str, Any], positional: bool) -> bool:
    row: Any = list(record.values()) if positional else record
    try:
        rows_to_query([row], model.schema, max_rows=1)
    except InputError:
        return False
    return True


@pytest.mark.parametrize(
    ("value", "arrow_type"),
    [
        pytest.param(1.5, pa.float64(), id="float"),
        pytest.param(2, pa.int64(), id="int"),
        pytest.param(float("nan"), pa.float64(), id="nan"),
        pytest.param(float("inf"), pa.float64(), id="inf"),
        pytest.param(-float("inf"), pa.float32(), id="minus-inf-float32"),
        pytest.param(None, pa.float64(), id="null"),
        pytest.param(None, pa.int32(), id="null-int"),
    ],
)
def test_numeric_values_pass_and_fail_as_in_the_server(
    iris: LoadedModel, value: Any, arrow_type: pa.DataType
) -> None:
    batch = pa.RecordBatch.from_arrays(
        [pa.array([value], type=arrow_type)] + [pa.array([1.0])] * 3, names=list(IRIS)
    )
    checked = check_batch(batch, Layout(IRIS), iris.schema, first_row=41)
    record = {"a": value, "b": 1.0, "c": 1.0, "d": 1.0}
    assert (not checked.rejects) == _server_accepts(iris, record, positional=True)
    if checked.rejects:
        assert checked.rejects[0].row == 41
        assert "feature 'a'" in checked.rejects[0].reason
        assert len(checked) == 0


@pytest.mark.parametrize(
    ("color", "size"),
    [
        pytest.param("red", 10.0, id="valid"),
        pytest.param(None, 10.0, id="null-string"),
        pytest.param("red", None, id="null-number"),
        pytest.param("red", float("nan"), id="nan"),
    ],
)
def test_named_values_pass_and_fail_as_in_the_server(
    frame_model: LoadedModel, color: str | None, size: float | None
) -> None:
    batch = pa.RecordBatch.from_pydict(
        {"weight": [5.0], "color": pa.array([color], pa.string()), "size": [size]}
    )
    layout = plan_layout(batch.schema.names, frame_model.schema)
    checked = check_batch(batch, layout, frame_model.schema)
    record = {"size": size, "color": color, "weight": 5.0}
    assert (not checked.rejects) == _server_accepts(frame_model, record, positional=False)


def test_a_valid_batch_becomes_the_matrix_the_server_builds(frame_model: LoadedModel) -> None:
    records = [
        {"size": 9.5, "color": "blue", "weight": 4},
        {"size": 12, "color": "red", "weight": 6.5},
    ]
    batch = pa.RecordBatch.from_pylist(records)
    checked = check_batch(
        batch, plan_layout(batch.schema.names, frame_model.schema), frame_model.schema
    )
    server = rows_to_query(records, frame_model.schema, max_rows=2).rows
    assert checked.rows.dtype == server.dtype == object
    np.testing.assert_array_equal(checked.rows, server)
    assert (
        frame_model.predict(checked.rows).labels.tolist()
        == frame_model.predict(server).labels.tolist()
    )


@pytest.mark.parametrize(
    "arrow_type",
    [
        pytest.param(pa.float64(), id="float64"),
        pytest.param(pa.float32(), id="float32"),
        pytest.param(pa.int32(), id="int32"),
        pytest.param(pa.int64(), id="int64-checked-column-by-column"),
    ],
)
def test_a_clean_numeric_batch_is_the_servers_matrix_and_known_finite(
    iris: LoadedModel, arrow_type: pa.DataType
) -> None:
    values = np.arange(40, dtype=np.float64).reshape(10, 4) * 1.5 // 1
    batch = pa.RecordBatch.from_arrays(
        [pa.array(values[:, j]).cast(arrow_type) for j in range(4)], names=list(IRIS)
    )
    checked = check_batch(batch, Layout(IRIS), iris.schema)
    server = rows_to_query(values.tolist(), iris.schema, max_rows=10).rows
    assert checked.rows.dtype == np.float64 and checked.rows.flags.c_contiguous
    np.testing.assert_array_equal(checked.rows, server)
    assert checked.finite == (arrow_type != pa.int64())
    assert checked.valid is None and not checked.rejects


def test_bad_rows_are_numbered_and_the_others_kept(iris: LoadedModel) -> None:
    values = np.ones((6, 4))
    values[1, 2] = np.nan
    values[4, 0] = np.inf
    batch = pa.RecordBatch.from_arrays([pa.array(values[:, j]) for j in range(4)], names=list(IRIS))
    checked = check_batch(batch, Layout(IRIS), iris.schema, first_row=100)
    assert [(r.row, r.reason) for r in checked.rejects] == [
        (101, MISSING.format("c")),
        (104, "feature 'a': expected a finite number, got inf"),
    ]
    assert checked.valid is not None and checked.valid.tolist() == [1, 0, 1, 1, 0, 1]
    assert checked.rows.shape == (4, 4)


def test_a_column_of_the_wrong_type_stops_the_run(
    iris: LoadedModel, frame_model: LoadedModel
) -> None:
    strings = pa.RecordBatch.from_pydict({k: ["1.0"] for k in IRIS})
    with pytest.raises(
        InputError, match="column 'a' holds string values; the model expects numbers"
    ):
        check_batch(strings, Layout(IRIS), iris.schema)
    flags = pa.RecordBatch.from_pydict({k: [True] for k in IRIS})
    with pytest.raises(InputError, match="holds bool"):
        check_batch(flags, Layout(IRIS), iris.schema)
    numbers = pa.RecordBatch.from_pydict({"size": [1.0], "color": [3], "weight": [1.0]})
    with pytest.raises(
        InputError, match="column 'color' holds int64 values; the model expects strings"
    ):
        check_batch(
            numbers, plan_layout(numbers.schema.names, frame_model.schema), frame_model.schema
        )


def test_csv_text_is_parsed_and_bad_text_named(iris: LoadedModel) -> None:
    batch = pa.RecordBatch.from_pydict(
        {"a": ["1.5", "x", "nan", ""], "b": ["1"] * 4, "c": ["1"] * 4, "d": ["2e0"] * 4}
    )
    checked = check_batch(batch, Layout(IRIS), iris.schema, text_numbers=True)
    assert [(r.row, r.reason) for r in checked.rejects] == [
        (1, "feature 'a': expected a number, got 'x'"),
        (2, "feature 'a': expected a number, got 'nan'"),
        (3, MISSING.format("a")),
    ]
    assert checked.rows.tolist() == [[1.5, 1.0, 1.0, 2.0]]


def test_layout_by_name_and_by_position(iris: LoadedModel, frame_model: LoadedModel) -> None:
    named = plan_layout(["id", "weight", "color", "size"], frame_model.schema, keep=["id"])
    assert named == Layout(("size", "color", "weight"), ("id",))
    with pytest.raises(InputError, match="missing 1 feature column"):
        plan_layout(["weight", "color"], frame_model.schema)
    with pytest.raises(InputError, match="does not use: id; carry them with --keep-columns"):
        plan_layout(["id", "weight", "color", "size"], frame_model.schema)
    ignored = plan_layout(
        ["id", "weight", "color", "size"], frame_model.schema, ignore_unknown=True
    )
    assert ignored.keep == ()
    positional = plan_layout(["id", "w", "x", "y", "z"], iris.schema, keep=["id"])
    assert positional == Layout(("w", "x", "y", "z"), ("id",))
    with pytest.raises(InputError, match="takes 4 features by position"):
        plan_layout(["id", "w", "x", "y", "z"], iris.schema)
    with pytest.raises(InputError, match="--keep-columns: no column 'nope'"):
        plan_layout(list(IRIS), iris.schema, keep=["nope"])


def test_json_rows_use_the_servers_own_checks_row_by_row(frame_model: LoadedModel) -> None:
    rows: list[Any] = [
        {"size": 1.0, "color": "red", "weight": 2.0},
        {"size": "big", "color": "red", "weight": 2.0},
        {"size": 1.0, "weight": 2.0},
        {"size": 3.0, "color": "blue", "weight": 1.0},
    ]
    checked = check_rows(rows, frame_model.schema, first_row=10)
    assert [r.row for r in checked.rejects] == [11, 12]
    assert "expected a number, got 'big'" in checked.rejects[0].reason
    assert "missing 1 feature(s): color" in checked.rejects[1].reason
    assert checked.rows.shape == (2, 3)


def test_missing_values_go_to_the_model_where_it_takes_them(imputed: LoadedModel) -> None:
    records: list[dict[str, Any]] = [
        {"a": None, "color": "red", "b": 0.1},
        {"a": 0.3, "color": None, "b": 0.9},
        {"a": 0.3, "color": "blue", "b": None},
        {"a": float("nan"), "color": "green", "b": -1.0},
    ]
    batch = pa.RecordBatch.from_pylist(records)
    checked = check_batch(batch, plan_layout(batch.schema.names, imputed.schema), imputed.schema)
    assert [(r.row, r.reason.split(" is missing")[0]) for r in checked.rejects] == [
        (2, "feature 'b'")
    ]
    accepted = [records[i] for i in (0, 1, 3)]
    server = rows_to_query(accepted, imputed.schema, max_rows=3).rows
    assert imputed.predict(checked.rows).labels.tolist() == imputed.predict(server).labels.tolist()
    for record in records:
        assert _server_accepts(imputed, record, positional=False) == (record["b"] is not None)


def test_an_empty_csv_cell_is_a_missing_value(imputed: LoadedModel) -> None:
    batch = pa.RecordBatch.from_pydict({"a": ["", "1"], "color": ["red", ""], "b": ["0.5", ""]})
    layout = plan_layout(batch.schema.names, imputed.schema)
    checked = check_batch(batch, layout, imputed.schema, text_numbers=True)
    assert [r.row for r in checked.rejects] == [1]  # "b" is empty there; a and color may be
