"""score_table end to end on real files: every input layout, output format and error mode."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from restpredict.batch import BatchJob, score_table
from restpredict.errors import InputError
from restpredict.model.backend import backend_name, fast_model
from restpredict.model.loading import LoadedModel
from tests.support.models import frame_data

IRIS = ("a", "b", "c", "d")


def iris_table(n: int, seed: int = 0) -> tuple[pa.Table, np.ndarray]:
    """``id`` plus four uniform features, and the features as a matrix."""
    values = np.random.default_rng(seed).uniform(0, 7, size=(n, 4))
    columns = {"id": np.arange(n) * 10, **{k: values[:, j] for j, k in enumerate(IRIS)}}
    return pa.table(columns), values


def job(source: Path | str, output: Path, **options: object) -> BatchJob:
    fmt = options.pop("output_format", None) or output.suffix.lstrip(".")
    return BatchJob(str(source), output, fmt, **options)  # type: ignore[arg-type]


def test_parquet_file_scored_with_kept_columns_and_probabilities(
    tmp_path: Path, iris: LoadedModel
) -> None:
    table, values = iris_table(5000)
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=1200)
    out = tmp_path / "out.parquet"
    summary = score_table(
        iris, job(tmp_path / "in.parquet", out, keep_columns=("id",), proba=True, batch_size=700)
    )
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (5000, 5000, 0)
    scored = pq.read_table(out)
    assert scored.schema == pa.schema(
        [
            ("id", pa.int64()),
            ("prediction", pa.string()),
            ("proba_setosa", pa.float64()),
            ("proba_versicolor", pa.float64()),
            ("proba_virginica", pa.float64()),
        ]
    )
    assert scored["id"].to_pylist() == table["id"].to_pylist()
    assert scored["prediction"].to_pylist() == iris.estimator.predict(values).tolist()
    proba = np.column_stack([scored[f"proba_{c}"].to_numpy() for c in iris.schema.classes or ()])
    np.testing.assert_allclose(proba, iris.estimator.predict_proba(values), rtol=0, atol=0)


@pytest.mark.parametrize("layout", ["directory", "glob"])
def test_a_directory_or_glob_is_one_table_in_file_order(
    tmp_path: Path, iris: LoadedModel, layout: str
) -> None:
    data = tmp_path / "data"
    (data / "part-2").mkdir(parents=True)
    parts = [iris_table(n, seed) for seed, n in enumerate((300, 1, 450))]
    pq.write_table(parts[0][0], data / "part-0.parquet")
    pq.write_table(parts[1][0], data / "part-1.parquet")
    pq.write_table(parts[2][0], data / "part-2" / "rows.parquet")
    (data / "_SUCCESS").write_text("")
    (data / ".part-0.parquet.crc").write_bytes(b"\0")
    source = str(data) if layout == "directory" else str(data / "**" / "*.parquet")
    out = tmp_path / "out.arrow"
    summary = score_table(iris, job(source, out, keep_columns=("id",)))
    values = np.concatenate([v for _, v in parts])
    scored = feather.read_table(out)
    assert summary.rows_scored == len(values) == scored.num_rows
    assert scored["prediction"].to_pylist() == iris.estimator.predict(values).tolist()


def test_labels_keep_their_type(tmp_path: Path, iris_int_path: Path, regressor_path: Path) -> None:
    from restpredict.model.loading import load_model

    table, values = iris_table(50)
    pq.write_table(table.drop(["id"]), tmp_path / "in.parquet")
    ints = load_model(iris_int_path)
    score_table(ints, job(tmp_path / "in.parquet", tmp_path / "ints.parquet"))
    assert pq.read_schema(tmp_path / "ints.parquet").field("prediction").type == pa.int64()
    assert pq.read_table(tmp_path / "ints.parquet")["prediction"].to_pylist() == (
        ints.estimator.predict(values).tolist()
    )
    pq.write_table(table.drop(["id", "d"]), tmp_path / "three.parquet")
    regressor = load_model(regressor_path)
    score_table(regressor, job(tmp_path / "three.parquet", tmp_path / "reg.parquet"))
    got = pq.read_table(tmp_path / "reg.parquet")["prediction"]
    assert got.type == pa.float64()
    np.testing.assert_array_equal(got.to_numpy(), regressor.estimator.predict(values[:, :3]))


def test_a_dataframe_model_reads_columns_by_name(tmp_path: Path, frame_model: LoadedModel) -> None:
    frame, _ = frame_data(200)
    shuffled = frame[["weight", "color", "size"]].assign(customer=[f"c{i}" for i in range(200)])
    pq.write_table(pa.Table.from_pandas(shuffled, preserve_index=False), tmp_path / "in.parquet")
    out = tmp_path / "out.csv"
    score_table(frame_model, job(tmp_path / "in.parquet", out, keep_all=True))
    scored = pa_csv.read_csv(out)
    assert scored.column_names == ["weight", "color", "size", "customer", "prediction"]
    assert scored["prediction"].to_pylist() == frame_model.estimator.predict(frame).tolist()


def test_bad_rows_fail_the_run_by_default_and_leave_no_output(
    tmp_path: Path, iris: LoadedModel
) -> None:
    table, _ = iris_table(3000)
    c = table["c"].to_numpy().copy()
    c[2500] = np.nan
    pq.write_table(table.set_column(3, "c", pa.array(c)), tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    out.write_bytes(b"yesterday's result")
    with pytest.raises(
        InputError,
        match=r"^row 2500: feature 'c' is missing \(null\), but Pipeline\(StandardScaler, ",
    ):
        score_table(iris, job(tmp_path / "in.parquet", out, keep_columns=("id",), batch_size=1000))
    assert out.read_bytes() == b"yesterday's result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out.parquet"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param(np.inf, ": expected a finite number, got inf", id="inf"),
        pytest.param(-np.inf, ": expected a finite number, got -inf", id="-inf"),
        pytest.param(np.nan, " is missing (null), but Pipeline(StandardScaler, ", id="nan"),
    ],
)
def test_non_finite_input_on_the_fast_path_gets_validations_error(
    tmp_path: Path, iris: LoadedModel, value: float, reason: str
) -> None:
    """Validation is the one scan of the input: its error, naming the row and feature."""
    model = dataclasses.replace(iris, extra={})
    model.warm_up()
    fast = fast_model(model)
    assert backend_name(fast) == "fast"
    table, _ = iris_table(3000)
    d = table["d"].to_numpy().copy()
    d[2100] = value
    pq.write_table(table.set_column(4, "d", pa.array(d)), tmp_path / "in.parquet")
    with pytest.raises(InputError) as raised:
        score_table(
            fast, job(tmp_path / "in.parquet", tmp_path / "out.parquet", keep_columns=("id",))
        )
    assert raised.value.detail.startswith(f"row 2100: feature 'd'{reason}")


def test_skip_sends_bad_rows_to_the_errors_file(tmp_path: Path, iris: LoadedModel) -> None:
    table, values = iris_table(3000)
    a = pa.array(np.where(np.arange(3000) % 1000 == 7, np.nan, values[:, 0]))
    b = pa.array(values[:, 1], mask=np.arange(3000) == 2999)
    pq.write_table(table.set_column(1, "a", a).set_column(2, "b", b), tmp_path / "in.parquet")
    out, errors = tmp_path / "out.parquet", tmp_path / "errors.jsonl"
    summary = score_table(
        iris,
        job(tmp_path / "in.parquet", out, keep_columns=("id",), on_error="skip", errors_to=errors),
    )
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (3000, 2996, 4)
    logged = [json.loads(line) for line in errors.read_text().splitlines()]
    assert [entry["row"] for entry in logged] == [7, 1007, 2007, 2999]
    assert logged[-1]["error"].startswith("feature 'b' is missing (null), but Pipeline(")
    good = np.ones(3000, dtype=bool)
    good[[7, 1007, 2007, 2999]] = False
    scored = pq.read_table(out)
    assert scored["id"].to_pylist() == (np.arange(3000)[good] * 10).tolist()
    assert scored["prediction"].to_pylist() == iris.estimator.predict(values[good]).tolist()


def test_skip_needs_an_errors_file(tmp_path: Path, iris: LoadedModel) -> None:
    pq.write_table(iris_table(5)[0], tmp_path / "in.parquet")
    with pytest.raises(InputError, match="--on-error skip needs --errors-to"):
        score_table(iris, job(tmp_path / "in.parquet", tmp_path / "o.parquet", on_error="skip"))


def test_rows_the_model_refuses_are_found_one_by_one(
    tmp_path: Path, frame_model: LoadedModel
) -> None:
    """An unknown category passes validation; the encoder refuses it: that row alone is named."""
    frame, _ = frame_data(500)
    frame.loc[[3, 321], "color"] = "purple"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "in.parquet")
    errors = tmp_path / "errors.csv"
    summary = score_table(
        frame_model,
        job(tmp_path / "in.parquet", tmp_path / "out.parquet", on_error="skip", errors_to=errors),
    )
    assert summary.rows_rejected == 2
    lines = errors.read_text().splitlines()
    assert lines[0] == "row,error"
    assert [line.split(",")[0] for line in lines[1:]] == ["3", "321"]
    assert "the model rejected the input" in lines[1]
    kept = frame.drop(index=[3, 321])
    got = pq.read_table(tmp_path / "out.parquet")["prediction"].to_pylist()
    assert got == frame_model.estimator.predict(kept).tolist()
    with pytest.raises(InputError, match=r"^row 3: the model rejected the input"):
        score_table(frame_model, job(tmp_path / "in.parquet", tmp_path / "out2.parquet"))


def test_csv_and_jsonl_inputs_and_outputs(tmp_path: Path, iris: LoadedModel) -> None:
    table, values = iris_table(40)
    pa_csv.write_csv(table, tmp_path / "in.csv")
    score_table(iris, job(tmp_path / "in.csv", tmp_path / "out.jsonl", keep_columns=("id",)))
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    # CSV holds text: kept columns stay text; the features are parsed as numbers.
    assert lines[0] == {"id": "0", "prediction": iris.estimator.predict(values[:1])[0]}
    assert [x["prediction"] for x in lines] == iris.estimator.predict(values).tolist()


def test_jsonl_records_keep_their_typed_columns(tmp_path: Path, frame_model: LoadedModel) -> None:
    frame, _ = frame_data(40)
    records = frame.assign(id=range(40)).to_dict(orient="records")
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    score_table(frame_model, job(tmp_path / "in.jsonl", tmp_path / "out.csv", keep_columns=("id",)))
    scored = pa_csv.read_csv(tmp_path / "out.csv")
    assert scored["id"].to_pylist() == list(range(40))
    assert scored["prediction"].to_pylist() == frame_model.estimator.predict(frame).tolist()


def test_headerless_csv_keeps_its_first_row(tmp_path: Path, iris: LoadedModel) -> None:
    values = np.random.default_rng(3).uniform(0, 7, size=(30, 4))
    (tmp_path / "in.csv").write_text("\n".join(",".join(map(str, r)) for r in values) + "\n")
    summary = score_table(iris, job(tmp_path / "in.csv", tmp_path / "out.parquet"))
    assert summary.rows_scored == 30
    got = pq.read_table(tmp_path / "out.parquet")["prediction"].to_pylist()
    assert got == iris.estimator.predict(values).tolist()


def test_jobs_give_the_same_answers(tmp_path: Path, iris: LoadedModel) -> None:
    table, values = iris_table(20_000)
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=3000)
    score_table(
        iris,
        job(
            tmp_path / "in.parquet",
            tmp_path / "out.parquet",
            keep_columns=("id",),
            jobs=2,
            batch_size=2500,
        ),
    )
    scored = pq.read_table(tmp_path / "out.parquet")
    assert scored["id"].to_pylist() == table["id"].to_pylist()
    assert scored["prediction"].to_pylist() == iris.estimator.predict(values).tolist()


def test_nothing_scored_still_writes_a_typed_empty_file(tmp_path: Path, iris: LoadedModel) -> None:
    table, _ = iris_table(3)
    nan = pa.array([np.nan] * 3)
    pq.write_table(table.drop(["id"]).set_column(0, "a", nan), tmp_path / "in.parquet")
    errors = tmp_path / "errors.jsonl"
    summary = score_table(
        iris,
        job(tmp_path / "in.parquet", tmp_path / "out.parquet", on_error="skip", errors_to=errors),
    )
    assert summary.rows_rejected == 3
    assert pq.read_schema(tmp_path / "out.parquet").field("prediction").type == pa.string()
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 0
