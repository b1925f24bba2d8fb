"""Schemathesis, with every check, against real servers: /openapi.json says what they do.

Each run fuzzes every operation of the document (examples, coverage, fuzzing and stateful
phases): responses must match their documented status, content type, headers and schema;
requests the schema allows must be accepted and those it forbids refused; no 5xx. A fixed
seed keeps CI reproducible (other seeds were run by hand); the number of examples is bounded
so that one run takes well under a minute on two cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import ServerProcess

HOOKS = Path(__file__).with_name("schemathesis_hooks.py")


def schemathesis(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "20",
        "--seed",
        "20261126",
        "--generation-database",
        "none",
        "--request-timeout",
        "10",
        "--no-color",
    ]
    return subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"SCHEMATHESIS_HOOKS": str(HOOKS), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(None, id="demo"),
        pytest.param("frame", id="dataframe-with-a-string-column"),
    ],
)
def test_schemathesis_finds_no_violation(
    serve: Callable[..., ServerProcess], frame_path: Path, tmp_path: Path, model: str | None
) -> None:
    args = [str(frame_path)] if model else []
    # A small max_rows keeps the coverage phase's "longest array" cases small; access
    # logs off, since nothing reads the server's output until it stops.
    server = serve(*args, "--max-rows", "20", "--no-access-log")
    result = schemathesis(server.url, tmp_path)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "Operations:       19 selected / 19 total" in report, report
    assert "Tested: 19" in report, report
