"""``info`` and ``serve`` on an unpinned pickle say once, on a terminal, that loading runs code."""

from __future__ import annotations

import hashlib
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

NOTE = "runs the code stored in it"


def _on_a_terminal(*args: str) -> str:
    """Run ``restpredict ARGS`` with stderr on a pseudo-terminal; what it wrote there."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "restpredict", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env={**os.environ, "COLUMNS": "400", "TERM": "xterm"},
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
    finally:
        process.wait(timeout=30)
        os.close(leader)
    return output.decode(errors="replace")


def test_info_on_an_unpinned_pickle_notes_once_on_a_terminal(iris_path: Path) -> None:
    said = _on_a_terminal("info", str(iris_path))
    assert said.count(NOTE) == 1, said
    assert "--sha256" in said


def test_no_note_when_pinned_or_not_on_a_terminal(iris_path: Path) -> None:
    digest = hashlib.sha256(iris_path.read_bytes()).hexdigest()
    assert NOTE not in _on_a_terminal("info", str(iris_path), "--sha256", digest)
    piped = subprocess.run(
        [sys.executable, "-m", "restpredict", "info", str(iris_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert NOTE not in piped.stderr
