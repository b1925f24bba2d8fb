"""The results as files: one JSON document per run (for comparing runs and for tooling) and the
Markdown report rendered from it, both in ``benchmarks/results/``, named by the run's UTC start.

The JSON document is the record; the report and the chart are drawn from it, so either can be
redrawn from a committed run (``python -m benchmarks report|chart RESULTS.json``).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.errors import BenchmarkError
from benchmarks.goals import Check
from benchmarks.ratios import CEILING, NAIVE, throughput_ratio
from benchmarks.report import render_markdown
from benchmarks.runner import Results
from benchmarks.types import RunConfig

_PACKAGES = (
    "restpredict", "starlette", "uvicorn", "uvloop", "httptools", "scikit-learn", "numpy",
    "onnxruntime",
)  # fmt: skip

#: Where runs are kept, relative to the repository root the benchmark runs from.
RESULTS_DIR = Path("benchmarks/results")
#: File names sort in time order; minutes are enough, as a run takes several.
STAMP_FORMAT = "%Y-%m-%dT%H%MZ"

Document = dict[str, Any]


def to_dict(
    config: RunConfig,
    results: Results,
    checks: Sequence[Check],
    *,
    run: dict[str, Any] | None = None,
) -> Document:
    """Run facts, config, machine, servers, cells (with derived rates and ratios) and verdicts.

    ``run``: when and how the run was made (``started_at``, ``commit``, ``command``,
    ``subject``, ``notes``), as ``run_facts`` gathers them.
    """
    cells = results.cells
    return {
        "run": run or {},
        "config": asdict(config),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_at_start": results.loadavg_at_start,
            "loadavg_at_end": os.getloadavg(),
            "python": platform.python_version(),
            "packages": {name: _version(name) for name in _PACKAGES},
        },
        "servers": [
            {**asdict(report), "launches": _launch_summary(report.launches_s)}
            for report in results.servers
        ],
        "cells": [
            {
                **{k: v for k, v in asdict(cell).items() if k != "load"},
                **asdict(cell.load),
                "requests_per_s": cell.load.requests_per_s,
                "rows_per_s": cell.load.requests_per_s * cell.rows,
                "ratio_to_ceiling": throughput_ratio(cells, cell, CEILING),
                "ratio_to_naive": throughput_ratio(cells, cell, NAIVE),
            }
            for cell in cells
        ],
        "checks": [
            {**asdict(check.goal), "verdict": check.verdict, "ratio": check.ratio}
            for check in checks
        ],
    }


def run_facts(
    started: datetime, argv: Sequence[str], subject: str, notes: str | None = None
) -> dict[str, Any]:
    """When the run started (UTC), on which commit, with which command, and any notes."""
    return {
        "started_at": started.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _git_commit(),
        "command": " ".join(["python -m benchmarks", *argv]),
        "subject": subject,
        "notes": notes,
    }


def _launch_summary(launches: Sequence[float]) -> dict[str, Any]:
    return {
        "count": len(launches),
        "min_s": min(launches, default=None),
        "max_s": max(launches, default=None),
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """The checkout's short commit, with ``+dirty`` when files differ from it; None outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}+dirty" if status else head


def stamp(document: Document) -> str:
    """The run's file name stem: its UTC start, e.g. ``2026-11-27T1046Z``."""
    started = document.get("run", {}).get("started_at")
    if not isinstance(started, str):
        raise BenchmarkError("the results have no run.started_at to name their files by")
    return parse_time(started).strftime(STAMP_FORMAT)


def parse_time(text: str) -> datetime:
    """An ISO 8601 UTC time as written in ``run.started_at`` (``Z`` suffix, seconds optional)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def write_run(directory: Path, document: Document) -> tuple[Path, Path]:
    """Write ``<stamp>.json`` and ``<stamp>.md`` into ``directory``; never over another run."""
    directory.mkdir(parents=True, exist_ok=True)
    base = stamp(document)
    name = base
    for number in range(2, 100):
        if not (directory / f"{name}.json").exists() and not (directory / f"{name}.md").exists():
            break
        name = f"{base}-{number}"
    json_path, md_path = directory / f"{name}.json", directory / f"{name}.md"
    write_json(json_path, document)
    write_text(md_path, render_markdown(document))
    return json_path, md_path


def read_json(path: Path) -> Document:
    """A results document written by ``write_json``; a readable error for anything else."""
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise BenchmarkError(f"cannot read {path}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise BenchmarkError(f"{path} is not JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        raise BenchmarkError(f"{path} is not a benchmark results file (no 'cells' list)")
    return document


def write_json(path: Path, document: Document) -> None:
    """Write ``document`` to ``path``, indented."""
    write_text(path, json.dumps(document, indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write through a temporary file renamed into place: a half-written file never appears."""
    write_bytes(path, text.encode())


def write_bytes(path: Path, data: bytes) -> None:
    """``write_text`` for bytes (the chart's PNG)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the results from other users
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
