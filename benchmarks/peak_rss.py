"""Run a command and report its own peak RSS: ``python -m benchmarks.peak_rss OUT -- CMD...``.

A child's peak RSS as the kernel reports it (``ru_maxrss`` from ``wait4``) starts from its
parent's resident size at the fork: the high-water mark of the forked copy is kept across
``exec``. Measured from a large parent (the benchmark driver after writing a 10 GB table held
1.5 GB) every child seemed to peak at the parent's size. So this small process starts the
command and writes its peak, in KiB, to the file OUT; its stdout and stderr pass through.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run ``argv[2:]`` (after ``OUT --``); write its peak RSS to OUT; its exit code."""
    out, separator, *command = argv
    if separator != "--" or not command:
        print("usage: python -m benchmarks.peak_rss OUT -- COMMAND...", file=sys.stderr)
        return 2
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    Path(out).write_text(f"{usage.ru_maxrss}\n")  # KiB on Linux
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
