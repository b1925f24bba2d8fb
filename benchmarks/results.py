"""The results as JSON, for comparing runs and for tooling."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.goals import Check
from benchmarks.ratios import CEILING, NAIVE, throughput_ratio
from benchmarks.runner import Results
from benchmarks.types import RunConfig

_PACKAGES = ("restpredict", "starlette", "uvicorn", "uvloop", "httptools", "scikit-learn", "numpy")


def to_dict(config: RunConfig, results: Results, checks: Sequence[Check]) -> dict[str, Any]:
    """Config, machine, servers, cells (with derived rates and ratios) and goal verdicts."""
    cells = results.cells
    return {
        "config": asdict(config),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_at_start": results.loadavg_at_start,
            "loadavg_at_end": os.getloadavg(),
            "python": platform.python_version(),
            "packages": {name: _version(name) for name in _PACKAGES},
        },
        "servers": [asdict(report) for report in results.servers],
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


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path``, indented."""
    path.write_text(json.dumps(document, indent=2) + "\n")
