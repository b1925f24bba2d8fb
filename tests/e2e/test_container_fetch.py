"""A real image built with ``docker.model_fetch: startup``: it holds no model, and each
container fetches its source from S3 when it starts, verifies the pin, then serves.

One podman build per module (a few minutes cold: pip downloads the pinned wheels, s3fs and
skops among them), against a moto S3 server this test session starts on loopback. The
containers run with ``--network host`` to reach it, bound to a free loopback port, with the
credentials passed as environment variables as a Kubernetes Secret would (``envFrom``), a
read-only root filesystem and a tmpfs as the cache. Needs podman and the local base image
from ``.ci/container-setup.sh`` (see ``test_container.py`` and ``tests/support/containers.py``);
marked ``container``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sklearn.datasets import load_iris
from typer.testing import CliRunner

from restpredict.cli import app
from restpredict.errors import ExitCode
from restpredict.model.prepare import load_source
from restpredict.settings import load_settings
from tests.support.containers import build_image, podman, skip_without_podman, wait_ready
from tests.support.servers import free_port

pytestmark = pytest.mark.container

ROWS = load_iris().data[::25].tolist()
CACHE = "/var/cache/restpredict"


@dataclass
class Image:
    """The built image, the source it names, and how to reach the S3 it fetches from."""

    name: str
    context: Path
    source: str
    sha256: str
    endpoint: str


def credentials(endpoint: str) -> list[str]:
    """``-e`` flags for the container: what a Kubernetes Secret's envFrom would give it."""
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return [part for name, value in env.items() for part in ("-e", f"{name}={value}")]


@pytest.fixture(scope="module")
def image(
    tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, bucket: str, mlflow_dir: Path
) -> Iterator[Image]:
    skip_without_podman()
    project = tmp_path_factory.mktemp("fetch")
    source = f"s3://{bucket}/mlflow"
    config = project / "restpredict.yaml"
    config.write_text(f"model: {source}\ndocker:\n  model_fetch: startup\n")
    context = project / "context"
    with pytest.MonkeyPatch.context() as patch:  # dockerize resolves the source to pin it
        for name, value in {
            "AWS_ENDPOINT_URL": s3_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(project / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(project / "none"),
        }.items():
            patch.setenv(name, value)
        args = ["dockerize", "--config", str(config), "-o", str(context)]
        result = CliRunner().invoke(app, [*args, "--cache-dir", str(project / "cache")])
    assert result.exit_code == 0, result.output
    name = f"localhost/restpredict-fetch-{uuid.uuid4().hex[:8]}:test"
    build_image(context, name)
    digest = hashlib.sha256((mlflow_dir / "model.skops").read_bytes()).hexdigest()
    try:
        yield Image(name, context, source, digest, s3_endpoint)
    finally:
        podman("rmi", "-f", name, check=False)


def run_args(image: Image, port: int, *env: str) -> list[str]:
    """``podman run`` arguments: host network, read-only root, tmpfs cache, loopback port."""
    return [
        "--network",
        "host",
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs",
        "/tmp:rw,size=64m,mode=1777",
        "--tmpfs",
        f"{CACHE}:rw,size=64m,mode=1777",
        "--cap-drop=ALL",
        "--security-opt",
        "no-new-privileges",
        *credentials(image.endpoint),
        *env,
        image.name,
        # The image's CMD with a loopback host and a free port (host network): the source, pin
        # and cache still come from the image's RESTPREDICT_* environment.
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


Start = Callable[..., tuple[str, str]]


@pytest.fixture
def started(image: Image) -> Iterator[Start]:
    """Start a container of ``image`` with extra ``-e`` flags; yields its URL and name."""
    names: list[str] = []

    def start(*env: str) -> tuple[str, str]:
        port, name = free_port(), f"restpredict-fetch-{uuid.uuid4().hex[:8]}"
        names.append(name)
        podman("run", "-d", "--name", name, *run_args(image, port, *env))
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, name)
        return url, name

    yield start
    for name in names:
        podman("rm", "-f", "-t", "2", name, check=False)


def local_predictions(source: Path) -> list[object]:
    """The model file or MLflow folder loaded here, as ``serve`` loads it."""
    model = load_source(str(source), load_settings(environ={}), allow_version_mismatch=False)
    labels: list[object] = model.predict(ROWS).labels.tolist()  # type: ignore[union-attr]
    return labels


def served_predictions(url: str) -> list[object]:
    """One request a row, in the wire contract's ``{"features": [...]}`` form."""
    out = []
    for row in ROWS:
        response = httpx.post(f"{url}/predict", json={"features": row}, timeout=30)
        assert response.status_code == 200, response.text
        out.append(response.json()["predictions"][0])
    return out


def test_the_image_holds_no_model_but_names_the_pinned_source(image: Image) -> None:
    assert not any(p.suffix in {".skops", ".joblib"} for p in image.context.iterdir())
    inspected = json.loads(podman("image", "inspect", image.name).stdout)[0]
    labels = inspected["Config"]["Labels"]
    assert labels["restpredict.model.source"] == image.source
    assert labels["restpredict.model.sha256"] == image.sha256
    env = dict(item.split("=", 1) for item in inspected["Config"]["Env"])
    assert env["RESTPREDICT_MODEL"] == image.source
    assert env["RESTPREDICT_SHA256"] == image.sha256
    files = podman("run", "--rm", "--entrypoint", "ls", image.name, "-A", "/models", check=False)
    assert files.returncode != 0  # no /models at all


def test_fetches_verifies_and_predicts_like_the_local_model(
    started: Start, image: Image, mlflow_dir: Path
) -> None:
    url, name = started()
    assert served_predictions(url) == local_predictions(mlflow_dir)
    meta = httpx.get(f"{url}/metadata", timeout=10).json()
    assert meta["source"] == image.source
    assert meta["sha256"] == image.sha256
    assert meta["model_file"].startswith(f"{CACHE}/")  # downloaded into the cache at start-up
    logs = podman("logs", name).stdout + podman("logs", name).stderr
    assert "testing" not in logs  # the credentials are never logged


def test_a_deployment_can_point_the_image_at_another_source(
    started: Start, bucket: str, iris_path: Path
) -> None:
    digest = hashlib.sha256(iris_path.read_bytes()).hexdigest()
    other = [
        "-e",
        f"RESTPREDICT_MODEL=s3://{bucket}/iris.joblib",
        "-e",
        f"RESTPREDICT_SHA256={digest}",
    ]
    url, _ = started(*other)
    assert served_predictions(url) == local_predictions(iris_path)


def test_a_wrong_pin_fails_start_up_with_one_line(image: Image) -> None:
    wrong = "0" * 64
    name = f"restpredict-fetch-{uuid.uuid4().hex[:8]}"
    args = run_args(image, free_port(), "-e", f"RESTPREDICT_SHA256={wrong}")
    try:
        podman("run", "-d", "--name", name, *args)
        code = podman("wait", name, timeout=120).stdout.strip()
        # The container's own output (podman run's stderr mixes in podman's systemd notes).
        logs = podman("logs", name)
    finally:
        podman("rm", "-f", "-t", "2", name, check=False)
    assert int(code) == ExitCode.STARTUP, logs.stdout + logs.stderr
    lines = (logs.stdout + logs.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {image.source}: {CACHE}/")  # the source, then the file
    assert f"expected {wrong}" in lines[0] and "refusing to unpickle" in lines[0]
