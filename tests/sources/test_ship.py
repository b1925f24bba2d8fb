"""init and dockerize with a remote source: resolved at build time, baked in, pinned."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from typer.testing import CliRunner

from restpredict.cli import app

runner = CliRunner()


def test_dockerize_bakes_a_remote_mlflow_model(
    aws: str, bucket: str, mlflow_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "build"
    cache = ["--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(app, ["dockerize", f"s3://{bucket}/mlflow", "-o", str(out), *cache])
    assert result.exit_code == 0, result.output
    data = (mlflow_dir / "model.skops").read_bytes()
    assert (out / "mlflow.skops").read_bytes() == data  # named for the source, not model.skops
    digest = hashlib.sha256(data).hexdigest()
    dockerfile = (out / "Dockerfile").read_text()
    assert f'"--sha256", "{digest}"' in dockerfile
    assert "/models/mlflow.skops" in dockerfile
    pins = (out / "requirements.txt").read_text()
    assert "skops==" in pins
    assert "s3fs" not in pins  # the image never fetches: nothing to fetch with
    assert f"baked s3://{bucket}/mlflow" in " ".join(result.stderr.split())


def test_init_keeps_a_remote_source_as_given(
    aws: str, bucket: str, iris_path: Path, tmp_path: Path
) -> None:
    config = tmp_path / "restpredict.yaml"
    cache = ["--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(app, ["init", f"s3://{bucket}/iris.joblib", "-o", str(config), *cache])
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(config.read_text())
    assert written["model"] == f"s3://{bucket}/iris.joblib"
    assert written["sha256"] == hashlib.sha256(iris_path.read_bytes()).hexdigest()


def test_dockerize_a_local_mlflow_folder_with_code_and_another_python(
    mlflow_pickle_dir: Path, tmp_path: Path
) -> None:
    import shutil
    import sys

    folder = tmp_path / "churn"
    shutil.copytree(mlflow_pickle_dir, folder)
    (folder / "python_env.yaml").write_text("python: 3.8.10\n")
    (folder / "code").mkdir()
    (folder / "code" / "helpers.py").write_text("ANSWER = 42\n")
    mlmodel = (folder / "MLmodel").read_text().replace("code: null", "code: code")
    (folder / "MLmodel").write_text(mlmodel)
    out = tmp_path / "build"
    result = runner.invoke(app, ["dockerize", str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "churn.pkl").read_bytes() == (folder / "model.pkl").read_bytes()
    running = "{}.{}".format(*sys.version_info)
    assert f"FROM python:{running}-slim" in (out / "Dockerfile").read_text()
    notes = " ".join(result.stderr.split())
    assert f"saved with Python 3.8.10 and the image has {running}" in notes
    assert "baked" not in notes  # a local folder: nothing was fetched
    assert (out / "code" / "code" / "helpers.py").read_text() == "ANSWER = 42\n"  # as --code-path


def test_dockerize_merges_the_mlflow_requirements(mlflow_pickle_dir: Path, tmp_path: Path) -> None:
    import shutil

    import numpy

    folder = tmp_path / "churn"
    shutil.copytree(mlflow_pickle_dir, folder)
    recorded = ["mlflow==3.17.0", "tabulate==0.9.0", "numpy==1.26.4", "scikit-learn==0.1"]
    (folder / "requirements.txt").write_text("\n".join(recorded) + "\n")
    out = tmp_path / "build"
    result = runner.invoke(app, ["dockerize", str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    pins = (out / "requirements.txt").read_text().splitlines()
    assert "tabulate==0.9.0" in pins  # only MLflow names it: added at its version
    assert f"numpy=={numpy.__version__}" in pins  # in both: restpredict's pin is kept
    assert not any(line.startswith("mlflow") for line in pins)
    notes = " ".join(result.stderr.split())
    assert (
        f"conflict: the model's MLflow requirements.txt pins numpy==1.26.4, the image pins "
        f"numpy=={numpy.__version__}"
    ) in notes


def test_dockerize_model_fetch_startup_leaves_the_model_out(
    aws: str, bucket: str, iris_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "build"
    source = f"s3://{bucket}/iris.joblib"
    args = ["dockerize", source, "--model-fetch", "startup", "-o", str(out)]
    result = runner.invoke(app, [*args, "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256(iris_path.read_bytes()).hexdigest()
    assert not (out / "iris.joblib").exists()
    dockerfile = (out / "Dockerfile").read_text()
    assert f'RESTPREDICT_MODEL="{source}"' in dockerfile
    assert f'RESTPREDICT_SHA256="{digest}"' in dockerfile
    pins = (out / "requirements.txt").read_text()
    assert "s3fs==" in pins and "fsspec==" in pins  # the image fetches: it needs the backend
    deployment = next(yaml.safe_load_all((out / "k8s.yaml").read_text()))
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["RESTPREDICT_MODEL"] == source and env["RESTPREDICT_SHA256"] == digest
    assert "testing" not in (out / "k8s.yaml").read_text() + dockerfile  # no credentials
    assert "each container fetches" in " ".join(result.stderr.split())


def test_dockerize_model_fetch_startup_refuses_a_local_file(
    iris_path: Path, tmp_path: Path
) -> None:
    args = ["dockerize", str(iris_path), "--model-fetch", "startup", "-o", str(tmp_path / "b")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "docker.model_fetch: startup needs a remote source" in line
    assert not (tmp_path / "b").exists()
