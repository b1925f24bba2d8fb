"""A real build of what ``restpredict dockerize`` writes, run the way a platform would run it.

One podman build of the generated context (a few minutes cold: pip downloads the pinned
wheels from PyPI), then one container with a read-only root filesystem, only /tmp writable,
all capabilities dropped, and its port published on loopback only. Needs podman and the
local ``python:3.11-slim`` base image from ``.ci/container-setup.sh``; skipped without them.
Select or skip it with ``-m container`` / ``-m "not container"``.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from packaging.utils import canonicalize_name
from typer.testing import CliRunner

from restpredict._version import __version__
from restpredict.cli import app
from tests.support.containers import build_image, podman, skip_without_podman, wait_ready
from tests.support.servers import free_port

pytestmark = pytest.mark.container

UID = 10001
GREETING = 'say "hi" to $HOME \\ now'
ROWS = [
    {"size": 12.5, "color": "red", "weight": 4.0},
    {"size": 7.0, "color": "blue", "weight": 6.5},
    {"size": 10.0, "color": "green", "weight": 5.0},
]


@dataclass
class Running:
    """The built image and its running container."""

    project: Path
    context: Path
    image: str
    container: str
    url: str


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, frame_path: Path) -> Iterator[Running]:
    skip_without_podman()
    project = tmp_path_factory.mktemp("container")
    shutil.copy(frame_path, project / "frame.joblib")
    runner = CliRunner()
    config = project / "restpredict.yaml"
    result = runner.invoke(app, ["init", str(project / "frame.joblib"), "-o", str(config)])
    assert result.exit_code == 0, result.stderr
    with config.open("a") as file:  # settings the container must honour, and a tricky value
        file.write("max_rows: 2\n")
    text = config.read_text().replace(
        "docker:\n",
        f"docker:\n  model_filename: model.joblib\n  env:\n    GREETING: {json.dumps(GREETING)}\n",
        1,
    )
    config.write_text(text)
    context = project / "context"
    result = runner.invoke(app, ["dockerize", "--config", str(config), "-o", str(context)])
    assert result.exit_code == 0, result.stderr

    suffix = uuid.uuid4().hex[:8]
    image, container = f"localhost/restpredict-test-{suffix}:test", f"restpredict-test-{suffix}"
    port = free_port()
    try:
        build_image(context, image)
        podman(
            "run",
            "-d",
            "--name",
            container,
            "--read-only",
            "--read-only-tmpfs=false",
            "--tmpfs",
            "/tmp:rw,size=64m,mode=1777",
            "--cap-drop=ALL",
            "--security-opt",
            "no-new-privileges",
            "--network",
            "slirp4netns",
            "-p",
            f"127.0.0.1:{port}:8080",
            image,
        )
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, container)
        yield Running(project, context, image, container, url)
    finally:
        podman("rm", "-f", "-t", "2", container, check=False)
        podman("rmi", "-f", image, check=False)


def local_info(running: Running) -> dict[str, str]:
    """``restpredict info --json`` of the model file on this machine."""
    model = str(running.project / "frame.joblib")
    result = CliRunner().invoke(app, ["info", model, "--json"])
    assert result.exit_code == 0, result.stderr
    info: dict[str, str] = json.loads(result.stdout)
    return info


def in_container(running: Running, code: str) -> str:
    python = "/opt/restpredict/venv/bin/python"
    return podman("exec", running.container, python, "-c", code).stdout


def test_healthcheck_reports_healthy(running: Running) -> None:
    result = podman("healthcheck", "run", running.container, check=False)
    assert result.returncode == 0, result.stdout + result.stderr  # stderr: podman's systemd noise


def test_predictions_match_the_local_cli(running: Running) -> None:
    rows = running.project / "rows.json"
    rows.write_text(json.dumps(ROWS[:2]))
    local = CliRunner().invoke(
        app,
        [
            "predict",
            "--model",
            str(running.project / "frame.joblib"),
            "--input",
            str(rows),
            "--proba",
            "-o",
            "json",
        ],
    )
    assert local.exit_code == 0, local.stderr
    expected = [json.loads(line) for line in local.stdout.splitlines()]
    response = httpx.post(
        f"{running.url}/predict",
        json={"instances": ROWS[:2], "return": ["label", "proba"]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"] == [row["prediction"] for row in expected]
    for got, want in zip(body["probabilities"], expected):
        assert got == pytest.approx(want["probabilities"])


def test_serve_settings_from_the_config_reach_the_container(running: Running) -> None:
    response = httpx.post(f"{running.url}/predict", json={"instances": ROWS}, timeout=10)
    assert response.status_code == 422
    assert response.json()["code"] == "too_many_rows"  # max_rows: 2 from restpredict.yaml
    meta = httpx.get(f"{running.url}/metadata", timeout=10).json()
    assert meta["name"] == "frame"  # the local name, though the file is /models/model.joblib
    assert meta["model_file"] == "/models/model.joblib"
    assert meta["sklearn_version_running"] == meta["sklearn_version_trained"]
    local = json.loads(
        CliRunner().invoke(app, ["info", str(running.project / "frame.joblib"), "--json"]).stdout
    )
    assert meta["sha256"] == local["sha256"]


def test_runs_as_the_non_root_uid(running: Running) -> None:
    status = in_container(running, "print(open('/proc/1/status').read())")
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == [str(UID)] * 4
    cmdline = in_container(running, "print(open('/proc/1/cmdline').read().replace(chr(0), ' '))")
    assert "restpredict serve /models/model.joblib --host 0.0.0.0 --port 8080" in cmdline


def test_root_filesystem_is_read_only_but_tmp(running: Running) -> None:
    code = """
import errno, os
for path in ("/opt/restpredict/x", "/models/x", "/x", "/var/tmp/x"):
    try:
        open(path, "w")
    except OSError as exc:
        print(path, errno.errorcode[exc.errno])
    else:
        print(path, "WRITABLE")
model = "/models/model.joblib"
print("model", os.access(model, os.W_OK), oct(os.stat(model).st_mode))
open("/tmp/x", "w").write("ok")
print("tmp", open("/tmp/x").read())
print("env", os.environ["GREETING"])
"""
    lines = in_container(running, code).splitlines()
    for line in lines[:4]:
        assert line.split()[1] in ("EROFS", "EACCES"), line
    assert lines[4] == "model False 0o100444"
    assert lines[5] == "tmp ok"
    assert lines[6] == f"env {GREETING}"


def test_image_installs_exactly_the_pinned_versions(running: Running) -> None:
    # The image has no pip (dockerize uninstalls it): the venv's own metadata says what is in.
    listing = in_container(
        running,
        "import importlib.metadata as m\n"
        "for d in m.distributions(): print(d.metadata['Name'] + '==' + d.version)",
    )
    installed = {
        canonicalize_name(line.split("==")[0]): line.split("==")[1]
        for line in listing.splitlines()
        if "==" in line
    }
    # restpredict comes from the wheel in the context, checked below.
    installed.pop(canonicalize_name("restpredict"), None)
    pinned = dict(
        line.split("==")
        for line in (running.context / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for name in ("pip", "setuptools", "wheel"):
        assert name not in installed  # uninstalled with pip itself
    assert installed == pinned
    tests = in_container(
        running,
        "import pathlib; print(sum(1 for p in pathlib.Path('/opt/restpredict/venv').rglob('tests')"
        " if p.is_dir()))",
    )
    assert tests.strip() == "0"  # no library test suites in the image
    version = in_container(
        running, "import importlib.metadata as m; print(m.version('restpredict'))"
    )
    assert version.strip() == __version__  # from the wheel in the context (a file URL in freeze)


def test_image_metadata(running: Running) -> None:
    (info,) = json.loads(podman("image", "inspect", running.image).stdout)
    config = info["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Entrypoint"] == ["/opt/restpredict/venv/bin/restpredict"]
    probe = info["Healthcheck"]["Test"]  # podman puts it beside Config, not in it
    assert probe[:2] == ["CMD", "/opt/restpredict/venv/bin/python"]
    assert "/health/ready" in probe[-1]
    labels = config["Labels"]
    assert labels["restpredict.model.sha256"] == local_info(running)["sha256"]
    assert labels["restpredict.sklearn.version"] == local_info(running)["sklearn_version_trained"]


def test_stops_cleanly_on_sigterm(running: Running) -> None:
    """Last (module order): uvicorn handles SIGTERM as PID 1 and exits 0, not SIGKILLed."""
    podman("stop", "-t", "20", running.container, timeout=60)
    code = podman("inspect", "--format", "{{.State.ExitCode}}", running.container).stdout.strip()
    assert code == "0"
