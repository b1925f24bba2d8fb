"""The real CLI through Typer's CliRunner: commands, output formats, exit codes."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from restpredict.cli import app
from restpredict.errors import ExitCode
from restpredict.model.loading import LoadedModel
from tests.support.models import frame_data

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", [[], ["serve"], ["predict"], ["info"], ["version"]])
def test_every_command_has_help(command: list[str]) -> None:
    code, out, _ = invoke(*command, "--help")
    assert code == 0
    assert "Usage" in out


def test_predict_one_row_locally_as_json(iris_path: Path, iris: LoadedModel) -> None:
    code, out, _ = invoke("predict", "-m", str(iris_path), "-f", "6.7,3.0,5.2,2.3", "-o", "json")
    assert code == 0
    assert json.loads(out) == {"prediction": "virginica"}


def test_predict_with_probabilities_as_csv(iris_path: Path, iris: LoadedModel) -> None:
    code, out, _ = invoke(
        "predict", "-m", str(iris_path), "-f", "[5.1,3.5,1.4,0.2]", "--proba", "-o", "csv"
    )
    assert code == 0
    header, row = out.strip().splitlines()
    assert header == "prediction,proba_setosa,proba_versicolor,proba_virginica"
    expected = iris.estimator.predict_proba(np.array([[5.1, 3.5, 1.4, 0.2]]))[0]
    assert row.split(",")[0] == "setosa"
    assert float(row.split(",")[1]) == pytest.approx(expected[0])


@pytest.mark.parametrize("backend", ["sklearn", "auto"])
def test_predict_one_row_on_the_backend_asked_for(
    iris_path: Path, iris: LoadedModel, backend: str
) -> None:
    row = [6.1, 2.8, 4.7, 1.2]
    code, out, err = invoke(
        "predict", "-m", str(iris_path), "-f", json.dumps(row), "--proba", "-o", "json",
        "--backend", backend,
    )  # fmt: skip
    assert code == 0, err
    expected = iris.estimator.predict_proba(np.array([row]))[0]
    got = json.loads(out)
    assert got["prediction"] == iris.estimator.predict(np.array([row]))[0]
    assert [got["probabilities"][c] for c in iris.schema.classes or ()] == expected.tolist()


def test_predict_table_output(iris_path: Path) -> None:
    code, out, _ = invoke("predict", "-m", str(iris_path), "-f", "5.1,3.5,1.4,0.2", "-o", "table")
    assert code == 0
    assert "setosa" in out and "prediction" in out


def test_demo_model_when_no_model_is_given() -> None:
    code, out, _ = invoke("predict", "-f", "5.1,3.5,1.4,0.2", "-o", "json")
    assert code == 0
    assert json.loads(out) == {"prediction": "setosa"}


def test_csv_input_is_streamed_in_chunks(
    tmp_path: Path, iris_path: Path, iris: LoadedModel
) -> None:
    rows = np.random.default_rng(1).uniform(0, 7, size=(2500, 4))
    path = tmp_path / "rows.csv"
    path.write_text("a,b,c,d\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    code, out, _ = invoke(
        "predict", "-m", str(iris_path), "-i", str(path), "--chunk-size", "1000", "-o", "json"
    )
    assert code == 0, out
    got = [json.loads(line)["prediction"] for line in out.splitlines()]
    assert got == iris.estimator.predict(rows).tolist()


def test_jsonl_and_json_inputs(tmp_path: Path, iris_path: Path) -> None:
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    document = tmp_path / "rows.json"
    document.write_text(json.dumps({"features": rows}))
    for path in (jsonl, document):
        code, out, _ = invoke("predict", "-m", str(iris_path), "-i", str(path), "-o", "json")
        assert code == 0
        assert [json.loads(x)["prediction"] for x in out.splitlines()] == ["setosa", "virginica"]


def test_named_csv_for_a_dataframe_model(
    tmp_path: Path, frame_path: Path, frame_model: LoadedModel
) -> None:
    frame, _ = frame_data()
    path = tmp_path / "frame.csv"
    frame[["weight", "color", "size"]].head(20).to_csv(path, index=False)  # other column order
    code, out, _ = invoke("predict", "-m", str(frame_path), "-i", str(path), "-o", "json")
    assert code == 0, out
    got = [json.loads(line)["prediction"] for line in out.splitlines()]
    assert got == frame_model.estimator.predict(frame.head(20)).tolist()


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        pytest.param(
            ["-f", "1,2,3"],
            ExitCode.BAD_INPUT,
            "expected 4 features per row, got 3",
            id="feature-count",
        ),
        pytest.param(
            ["-f", "1,2,x,4"], ExitCode.BAD_INPUT, "expected a number, got 'x'", id="string"
        ),
        pytest.param(
            ["-f", "1,2,nan,4"], ExitCode.BAD_INPUT, "expected a number, got 'nan'", id="nan"
        ),
        pytest.param(
            [], ExitCode.BAD_INPUT, "give exactly one of --features or --input", id="no-input"
        ),
        pytest.param(
            ["-f", "1,2,3,4", "-m", "/absent/model.pkl"],
            ExitCode.STARTUP,
            "cannot read model file",
            id="missing-model",
        ),
        pytest.param(
            ["-f", "1,2,3,4", "--sha256", "0" * 64], ExitCode.STARTUP, "SHA-256", id="sha-mismatch"
        ),
        pytest.param(
            ["-f", "1,2,3,4", "-u", "http://127.0.0.1:9"],
            ExitCode.REMOTE,
            "cannot reach http://127.0.0.1:9",
            id="unreachable",
        ),
        pytest.param(
            ["-i", "/absent.csv"], ExitCode.BAD_INPUT, "cannot read input", id="missing-input"
        ),
        pytest.param(
            ["-f", "1,2,3,4", "--output-format", "xml"],
            ExitCode.BAD_INPUT,
            "--output-format on stdout must be table, json or csv",
            id="bad-output-format",
        ),
        pytest.param(
            ["-f", "1,2,3,4", "--backend", "fast"],
            ExitCode.CONFIG,
            "command line: backend: Input should be 'auto', 'sklearn' or 'onnx' (got 'fast')",
            id="bad-backend",
        ),
        pytest.param(
            ["-i", "in.parquet", "-o", "out", "--engine", "spark", "--backend", "onnx"],
            ExitCode.BAD_INPUT,
            "--engine spark predicts with scikit-learn on its executors; leave out --backend",
            id="spark-backend",
        ),
        pytest.param(
            ["-i", "rows.parquet", "-o", "scored.xml"],
            ExitCode.BAD_INPUT,
            "cannot tell the output format of 'scored.xml'",
            id="bad-output-suffix",
        ),
        pytest.param(
            ["-f", "1,2,3,4", "-o", "scored.parquet"],
            ExitCode.BAD_INPUT,
            "--features and --url write to stdout",
            id="features-to-a-file",
        ),
    ],
)
def test_errors_are_one_line_and_an_exit_code(
    args: list[str], exit_code: int, message: str, iris_path: Path
) -> None:
    if "-m" not in args and "-u" not in args:
        args = [*args, "-m", str(iris_path)]
    code, out, err = invoke("predict", *args)
    assert code == exit_code
    assert message in err
    assert err.startswith("error: ")
    assert "Traceback" not in err + out


def test_bad_config_exits_2_naming_the_line(tmp_path: Path) -> None:
    config = tmp_path / "restpredict.yaml"
    config.write_text("port: 8000\ncolour: red\n")
    code, _, err = invoke("info", "--config", str(config))
    assert code == ExitCode.CONFIG
    assert "line 2: unknown key 'colour'" in err


def test_info_table_and_json(frame_path: Path, frame_model: LoadedModel) -> None:
    code, out, _ = invoke("info", str(frame_path))
    assert code == 0
    assert "color (string)" in out and frame_model.sha256 in out
    code, out, _ = invoke("info", str(frame_path), "--json")
    assert json.loads(out)["feature_names"] == ["size", "color", "weight"]


def test_serve_refuses_a_bad_model_before_binding(tmp_path: Path) -> None:
    path = tmp_path / "dict.pkl"
    import joblib

    joblib.dump({"a": 1}, path)
    code, _, err = invoke("serve", str(path), "--port", "1")
    assert code == ExitCode.STARTUP
    assert "has no predict method" in err
    assert gc.isenabled()  # serve pauses garbage collection while it starts; not after failing


def test_importing_the_cli_imports_no_library() -> None:
    """serve imports the library with garbage collection paused: only if the CLI has not yet."""
    code = (
        "import sys, restpredict.cli; "
        "print(sorted(m for m in ('sklearn', 'pandas', 'pydantic', 'restpredict.app') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_version() -> None:
    from restpredict import __version__

    assert invoke("version")[1].strip() == __version__
