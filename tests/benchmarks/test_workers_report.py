"""The workers cell's memory reading and report, on this test process and a recorded run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.workers import pss_tree, render

REPO = Path(__file__).resolve().parents[2]


def test_pss_is_read_for_this_process() -> None:
    memory = pss_tree(os.getpid())
    assert memory["processes"] >= 1
    assert 0 < memory["pss_mib"] <= memory["rss_mib"]


def test_a_child_that_exited_is_left_out() -> None:
    """An exited child not yet reaped still lists as a child, but has no memory to read."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while _state(child.pid) != "Z":  # exited; this process has not waited for it yet
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.01)
        memory = pss_tree(os.getpid())
    finally:
        child.wait()
    assert memory["processes"] >= 1
    assert 0 < memory["pss_mib"] <= memory["rss_mib"]


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2].split()[0]


def test_a_recorded_run_renders_its_ratio_and_roll() -> None:
    runs = sorted((REPO / "benchmarks" / "results").glob("*-workers.json"))
    assert runs, "no recorded workers run"
    document = json.loads(runs[-1].read_text())
    report = render(document)
    assert f"**{document['pss_ratio']:.2f}x**" in report
    assert f"{document['roll']['failed']} of {document['roll']['requests']}" in report
    assert runs[-1].with_suffix(".md").read_text() == report  # the committed report is its JSON's
