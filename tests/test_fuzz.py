"""schemathesis, every check, against a real server and the hand-written OpenAPI document."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import ServerProcess

FUZZ = Path(__file__).parent / "fuzz"
KEY = "fuzz-key-for-tests"


def schemathesis_cli() -> str:
    script = Path(sys.executable).parent / "st"
    found = str(script) if script.exists() else shutil.which("st")
    if found is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    return found


def test_schemathesis_finds_nothing(
    serve: Callable[..., ServerProcess], iris_path: Path, tmp_path: Path
) -> None:
    st = schemathesis_cli()
    server = serve(str(iris_path), "--log-level", "warning", env={"RESTPREDICT_API_KEY": KEY})
    result = subprocess.run(
        [
            st,
            "--config-file",
            str(FUZZ / "schemathesis.toml"),
            "run",
            str(FUZZ / "openapi.yaml"),
            "--url",
            server.url,
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {KEY}",
            "--seed",
            "20260101",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # its .schemathesis/ cache stays out of the checkout
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
    assert server.process.poll() is None
