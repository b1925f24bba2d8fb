"""The CLI and a real server with remote sources: s3://, models:/ aliases that move, http://."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sklearn.datasets import load_iris
from typer.testing import CliRunner

from restpredict.cli import app
from restpredict.errors import ExitCode
from restpredict.model.loading import load_model
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

KEY = "k" * 32
AUTH = {"Authorization": f"Bearer {KEY}"}
ROWS = load_iris().data[::15].tolist()
runner = CliRunner()


def answers(url: str) -> list[object]:
    """The server's prediction for each row, one request a row as clients send them."""
    out = []
    for row in ROWS:
        response = httpx.post(f"{url}/predict", json={"features": row}, headers=AUTH, timeout=30)
        assert response.status_code == 200, response.text
        out.append(response.json()["predictions"][0])
    return out


def local_answers(path: Path) -> list[object]:
    return load_model(path).predict(ROWS).labels.tolist()  # type: ignore[union-attr]


def aws_env(endpoint: str, tmp_path: Path) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }


def test_serve_from_s3(
    serve: Callable[..., ServerProcess],
    s3_endpoint: str,
    bucket: str,
    iris_path: Path,
    tmp_path: Path,
) -> None:
    env = aws_env(s3_endpoint, tmp_path)
    # --log-format text: the start-up panel (which names the source) comes with text logs only.
    args = ("--cache-dir", str(tmp_path / "c"), "--log-format", "text")
    server = serve(f"s3://{bucket}/iris.joblib", *args, env=env)
    assert answers(server.url) == local_answers(iris_path)
    meta = httpx.get(f"{server.url}/metadata").json()
    assert meta["source"] == f"s3://{bucket}/iris.joblib"
    assert "ETag=" in meta["source_revision"]
    assert Path(meta["model_file"]).is_relative_to(tmp_path / "c")
    assert meta["name"] == "iris"
    panel = server.output()
    assert f"s3://{bucket}/iris.joblib" in panel
    assert "testing" not in panel


def test_alias_that_moves_is_picked_up_by_reload(
    serve: Callable[..., ServerProcess], store: str, iris_path: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store, registry_uri=store)
    client.set_registered_model_alias("iris", "champion", "1")
    env = {"MLFLOW_TRACKING_URI": store, "RESTPREDICT_API_KEY": KEY}
    server = serve("models:/iris@champion", "--cache-dir", str(tmp_path / "c"), env=env)
    meta = httpx.get(f"{server.url}/metadata", headers=AUTH).json()
    assert (meta["source"], meta["source_revision"]) == ("models:/iris@champion", "models:/iris/1")
    assert meta["mlflow"]["serialization_format"] == "skops"
    assert answers(server.url) == local_answers(iris_path)

    client.set_registered_model_alias("iris", "champion", "2")
    reloaded = httpx.post(f"{server.url}/admin/reload", headers=AUTH, timeout=120)
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["sha256"] != meta["sha256"]
    meta = httpx.get(f"{server.url}/metadata", headers=AUTH).json()
    assert meta["source_revision"] == "models:/iris/2"
    assert meta["mlflow"]["serialization_format"] == "cloudpickle"
    assert answers(server.url) == local_answers(iris_path)

    client.set_registered_model_alias("iris", "champion", "1")
    pinned = httpx.post(
        f"{server.url}/admin/reload", headers=AUTH, json={"sha256": "0" * 64}, timeout=120
    )
    assert pinned.status_code == 409  # the pin is checked on the fetched file: old model kept
    assert httpx.get(f"{server.url}/metadata", headers=AUTH).json()["sha256"] == meta["sha256"]


def test_cli_info_predict_and_failures(
    aws: str,
    bucket: str,
    store: str,
    iris_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    cache = ["--cache-dir", str(tmp_path / "c")]
    info = runner.invoke(app, ["info", "models:/iris/1", "--json", *cache])
    assert info.exit_code == 0, info.output
    meta = json.loads(info.stdout)
    assert meta["source_revision"] == "models:/iris/1"
    assert meta["mlflow"]["signature_inputs"][0]["name"] == "sepal length (cm)"

    row = ",".join(str(v) for v in ROWS[0])
    source = f"s3://{bucket}/iris.joblib"
    predicted = runner.invoke(app, ["predict", "-m", source, "-f", row, "-o", "json", *cache])
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.stdout)["prediction"] == local_answers(iris_path)[0]

    missing = runner.invoke(app, ["info", f"s3://{bucket}/absent.joblib", *cache])
    assert missing.exit_code == ExitCode.SOURCE
    assert missing.stderr.strip().splitlines() == [
        f"error: s3://{bucket}/absent.joblib: not found (look up)"
    ]
    empty = ["--cache-dir", str(tmp_path / "empty")]
    offline = runner.invoke(app, ["info", source, "--offline", *empty])
    assert offline.exit_code == ExitCode.SOURCE
    assert "offline, and not in the cache" in offline.stderr
