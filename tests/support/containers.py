"""podman for the container tests: the storage ``.ci/container-setup.sh`` made, the build of a
``dockerize`` context, and waiting for a container to serve."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

PODMAN_DIR = Path(os.environ.get("RP_PODMAN_DIR", "/tmp/rp-podman"))
BASE_IMAGE = "docker.io/library/python:3.11-slim"


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run podman with the storage and settings container-setup.sh wrote (env.sh)."""
    script = 'source "$1" && shift && exec podman "$@"'
    env_sh = str(PODMAN_DIR / "env.sh")
    result = subprocess.run(
        ["bash", "-c", script, "podman", env_sh, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
        )
    return result


def skip_without_podman() -> None:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: run .ci/container-setup.sh (CI does)")
    if not (PODMAN_DIR / "env.sh").exists():
        pytest.skip(f"no {PODMAN_DIR}/env.sh: run .ci/container-setup.sh (CI does)")
    if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        pytest.skip(f"base image {BASE_IMAGE} not built: run .ci/container-setup.sh (CI does)")
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the local base image has Python 3.11; dependencies are pinned for this one")


def build_image(context: Path, image: str, *, timeout: float = 900) -> None:
    """Build ``context`` as ``image``: the local base (--pull=never), no intermediate images
    left behind (--layers=false), Docker format (OCI drops HEALTHCHECK)."""
    podman(
        "build",
        "--pull=never",
        "--network",
        "host",
        "--format",
        "docker",
        "--layers=false",
        "-t",
        image,
        str(context),
        timeout=timeout,
    )


def wait_ready(url: str, container: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return
        state = podman("inspect", "--format", "{{.State.Running}}", container).stdout.strip()
        if state != "true":
            logs = podman("logs", container, check=False)
            raise AssertionError(f"container stopped:\n{logs.stdout}{logs.stderr}")
        time.sleep(0.5)
    raise AssertionError(f"container not ready after {timeout} s")
