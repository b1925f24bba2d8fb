"""One server process: launched pinned to a core, polled until it predicts, measured, stopped.

The process gets its own session, so stopping it (SIGTERM, then SIGKILL after a grace period)
reaches any workers it forked too. Its output goes to a log file, shown when it fails to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from benchmarks._http import post_json
from benchmarks.errors import BenchmarkError

_POLL_INTERVAL_S = 0.02
_STOP_GRACE_S = 5.0
_LOG_TAIL_CHARS = 2000


def free_port(host: str) -> int:
    """A port that was free on ``host`` a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """A server started with ``taskset -c CORE``; use it as a context manager so it always stops."""

    def __init__(self, argv: Sequence[str], core: int, log_path: Path, env: dict[str, str]) -> None:
        self._argv = ["taskset", "-c", str(core), *argv]
        self._log_path = log_path
        self._env = env
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0

    def __enter__(self) -> ServerProcess:
        with self._log_path.open("wb") as log:
            # taskset execs the command, so this pid is the server's own.
            self._process = subprocess.Popen(
                self._argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                start_new_session=True,
            )
        self._started_at = time.monotonic()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The server's process id."""
        if self._process is None:
            raise RuntimeError("server not started")
        return self._process.pid

    def wait_until_predicting(self, url: str, body: bytes, timeout_s: float) -> float:
        """Seconds from launch to the first 2xx answer to ``body``; raises if none in time."""
        deadline = self._started_at + timeout_s
        while time.monotonic() < deadline:
            self._raise_if_exited()
            try:
                status, _ = post_json(url, body, timeout_s=1.0)
            except OSError:
                status = 0
            if 200 <= status < 300:
                return time.monotonic() - self._started_at
            time.sleep(_POLL_INTERVAL_S)
        raise BenchmarkError(
            f"{self._argv[3:]} gave no successful prediction within {timeout_s:.0f} s\n"
            + self.log_tail()
        )

    def peak_rss_mib(self) -> float:
        """The sum of VmHWM over the server and its live descendants, in MiB.

        Each process's high-water mark may come at a different moment, so for a forking server
        this is an upper bound on the true peak of the group.
        """
        return sum(_vm_hwm_kib(pid) for pid in _process_tree(self.pid)) / 1024

    def log_tail(self) -> str:
        """The end of the server's output, for error messages."""
        text = self._log_path.read_text(errors="replace")
        return text[-_LOG_TAIL_CHARS:]

    def stop(self) -> None:
        """SIGTERM the server's session, then SIGKILL it if it has not exited after a grace."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        workers = _process_tree(process.pid)[1:]
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout=_STOP_GRACE_S)
        # Forked workers that outlived their leader: killed by id, if still in its group.
        for pid in workers:
            try:
                if os.getpgid(pid) == process.pid:
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _raise_if_exited(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise BenchmarkError(
                f"{self._argv[3:]} exited with code {self._process.returncode} before it "
                "could predict\n" + self.log_tail()
            )


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _process_tree(root: int) -> list[int]:
    """``root`` and every live descendant, found through each process's parent id."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # Field 4 of /proc/PID/stat, after the parenthesised command name.
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        tree.append(pid)
        frontier.extend(children.get(pid, []))
    return tree


def _vm_hwm_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0
