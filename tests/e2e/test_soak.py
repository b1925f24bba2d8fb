"""Soak: constant load on a real server, zero errors, bounded memory growth.

Runs for RESTPREDICT_SOAK_SECONDS (default 5, so the default suite stays fast);
for a real soak: RESTPREDICT_SOAK_SECONDS=600 python -m pytest -m slow tests/e2e/test_soak.py
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.loadgen import Load
from tests.support.servers import ServerProcess

SECONDS = float(os.environ.get("RESTPREDICT_SOAK_SECONDS", "5"))
GROWTH_LIMIT = 32 * 1024 * 1024  # bytes of resident memory the server may gain


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_constant_load_has_no_errors_and_bounded_memory(
    serve: Callable[..., ServerProcess], iris_path: Path
) -> None:
    server = serve(str(iris_path), "--log-level", "warning")
    body = {"features": [[5.1, 3.5, 1.4, 0.2]] * 20, "return": ["label", "proba"]}
    with Load(server.url, threads=4, body=body) as load:
        load.wait_for(ok=200)  # warm: allocator pools and caches settle
        baseline = rss(server.process.pid)
        started = time.monotonic()
        samples = []
        while time.monotonic() - started < SECONDS:
            time.sleep(min(1.0, SECONDS / 5))
            samples.append(rss(server.process.pid))
            assert httpx.get(f"{server.url}/health/ready", timeout=10).status_code == 200
            assert not load.failures, load.summary()
        served = load.ok
    assert load.failures == [], load.summary()
    assert load.refused == 0
    assert served > 200
    growth = max(samples) - baseline
    assert growth < GROWTH_LIMIT, f"RSS grew {growth / 2**20:.1f} MiB over {SECONDS:g} s"
