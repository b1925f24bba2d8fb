"""One wrk run, pinned to the load core, read back from the line ``wrk_report.lua`` prints.

wrk gets one thread for any number of connections: it has a single core, where a second thread
would only take turns with the first, and one epoll loop keeps 32 connections busy with ease.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from benchmarks.errors import BenchmarkError
from benchmarks.types import LoadResult

_MARKER = "BENCH_JSON "
# wrk stops by itself after its duration; past this slack it is presumed hung and killed.
_SLACK_S = 30.0
_REQUEST_TIMEOUT_S = 5


def require_wrk() -> None:
    """Fail early, with the install command, when wrk is missing."""
    if shutil.which("wrk") is None:
        raise BenchmarkError("wrk is not installed: apt-get update && apt-get install -y wrk")


def run(url: str, body_path: Path, connections: int, duration_s: int, core: int) -> LoadResult:
    """POST the body at ``url`` over ``connections`` keep-alive connections for ``duration_s``.

    wrk takes whole seconds only, hence the ``int``.
    """
    return to_load_result(run_raw(url, body_path, connections, duration_s, core))


def run_raw(
    url: str, body_path: Path, connections: int, duration_s: int, core: int
) -> dict[str, Any]:
    """``run``, as every field ``wrk_report.lua`` prints."""
    with as_file(files("benchmarks") / "wrk_report.lua") as script:
        argv = [
            "taskset", "-c", str(core), "wrk",
            "-t1", f"-c{connections}", f"-d{duration_s}s", f"--timeout={_REQUEST_TIMEOUT_S}s",
            "-s", str(script), url, "--", str(body_path),
        ]  # fmt: skip
        try:
            finished = subprocess.run(
                argv, capture_output=True, text=True, timeout=duration_s + _SLACK_S, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise BenchmarkError(
                f"wrk did not finish within {duration_s + _SLACK_S:g} s"
            ) from error
    return parse(finished.stdout, finished.stderr, finished.returncode)


def parse(stdout: str, stderr: str, returncode: int) -> dict[str, Any]:
    """The fields of wrk's report line; raises with wrk's own words when there is none."""
    lines = [line for line in stdout.splitlines() if line.startswith(_MARKER)]
    if returncode != 0 or not lines:
        raise BenchmarkError(f"wrk failed (exit {returncode}): {stderr.strip() or stdout.strip()}")
    raw: dict[str, Any] = json.loads(lines[-1][len(_MARKER) :])
    return raw


def to_load_result(raw: dict[str, Any]) -> LoadResult:
    """The fields every cell keeps."""
    return LoadResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1e3,
        p99_ms=raw["p99_us"] / 1e3,
        max_ms=raw["max_us"] / 1e3,
        non_2xx=raw["non_2xx"],
        socket_errors=sum(
            raw[key] for key in ("errors_connect", "errors_read", "errors_write", "errors_timeout")
        ),
    )
