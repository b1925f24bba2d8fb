"""``python -m benchmarks workers``: memory of N workers against one, and a rolling reload.

Builds a random forest of about 200 MB (``--trees``; random labels grow deep trees), then serves
it with ``restpredict serve --workers 1`` and ``--workers N`` (default 4), one after another.
Each server gets predictions over fresh connections (so every worker predicts and touches the
model) before its memory is read: the proportional set size (``Pss`` in
``/proc/PID/smaps_rollup``: a page shared by k processes counts 1/k in each) summed over the
server process and all its children. The goal (issue 13): N=4 workers <= 1.5x one worker's PSS
(a server that loads the model in each worker takes about 4x).

Then, with N workers under load (keep-alive clients posting continuously), a second forest of
the same schema is copied over the file and SIGHUP sent: the seconds until every worker serves
it (``/metadata`` names it and states no ``rollout``), and the requests that failed meanwhile
(connection resets included; goal 0).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import httpx
import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier

from benchmarks.errors import BenchmarkError
from benchmarks.results import RESULTS_DIR, STAMP_FORMAT, write_text

GOAL_RATIO = 1.5
FEATURES = 20


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks workers", description=__doc__)
    parser.add_argument("--workers", type=int, default=4, help="workers to compare with one")
    parser.add_argument("--trees", type=int, default=48, help="trees in the forest (~4 MB each)")
    parser.add_argument("--fitted", type=int, default=8, help="trees fitted; the rest copies")
    parser.add_argument("--samples", type=int, default=160_000, help="training rows")
    parser.add_argument("--clients", type=int, default=8, help="keep-alive clients in the roll")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return parser


def main(argv: Sequence[str]) -> int:
    """Run the cell; 0 when measured (the goal is reported, not enforced), 2 on failure."""
    args = build_parser().parse_args(argv)
    started = datetime.now(timezone.utc)
    try:
        with tempfile.TemporaryDirectory(prefix="restpredict-workers-") as tmp:
            document = measure(Path(tmp), args)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    document["started_at"] = started.isoformat(timespec="seconds")
    report = render(document)
    print(report)
    stamp = started.strftime(STAMP_FORMAT)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    write_text(args.results_dir / f"{stamp}-workers.json", json.dumps(document, indent=2) + "\n")
    write_text(args.results_dir / f"{stamp}-workers.md", report)
    return 0


def measure(directory: Path, args: argparse.Namespace) -> dict[str, object]:
    """Fit, serve with 1 and N workers, roll; the numbers as a JSON-able document."""
    model, other = directory / "forest.joblib", directory / "forest2.joblib"
    _progress(f"fitting two forests of {args.trees} trees")
    _fit(model, args.fitted, args.samples, seed=0, trees=args.trees)
    _fit(other, args.fitted, args.samples, seed=1, trees=args.fitted)
    served = directory / "served.joblib"
    shutil.copyfile(model, served)
    memory = {}
    for workers in (1, args.workers):
        with _server(served, workers) as (process, url):
            _touch(url, workers)
            memory[str(workers)] = pss_tree(process.pid)
            _progress(f"{workers} worker(s): {memory[str(workers)]}")
            if workers == args.workers:
                roll = _roll(process, url, served, other, args.clients)
    one, many = memory["1"]["pss_mib"], memory[str(args.workers)]["pss_mib"]
    return {
        "workers": args.workers,
        "model_file_mib": round(model.stat().st_size / 2**20, 1),
        "memory": memory,
        "pss_ratio": round(many / one, 3),
        "roll": roll,
        "loadavg": list(os.getloadavg()),
    }


def pss_tree(pid: int) -> dict[str, float]:
    """PSS and RSS (MiB) summed over ``pid`` and its descendants, and how many processes.

    A descendant that exits while the tree is read holds no memory any more and is left out:
    an exited process not yet reaped (a zombie) still lists as a child, but its
    ``smaps_rollup`` reads as ESRCH, and once reaped its ``/proc`` folder is gone.
    """
    read = [fields for each in [pid, *_descendants(pid)] if (fields := _rollup(each)) is not None]
    if not read:
        raise BenchmarkError(f"process {pid} exited before its memory was read")
    return {
        "processes": len(read),
        "pss_mib": round(sum(fields["Pss"] for fields in read) / 1024, 1),
        "rss_mib": round(sum(fields["Rss"] for fields in read) / 1024, 1),
    }


def _rollup(pid: int) -> dict[str, int] | None:
    """The kB fields of ``pid``'s ``smaps_rollup``; None when the process has exited."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (ProcessLookupError, FileNotFoundError):
        return None
    fields = {}
    for line in text.splitlines()[1:]:
        name, _, value = line.partition(":")
        fields[name.strip()] = int(value.split()[0])  # kB
    return fields


def _descendants(pid: int) -> list[int]:
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except (ProcessLookupError, FileNotFoundError):  # exited meanwhile: no children left
        return []
    children = [int(c) for c in listed.split()]
    return [*children, *(d for c in children for d in _descendants(c))]


def _fit(path: Path, fitted: int, samples: int, seed: int, trees: int) -> None:
    """A forest of ``trees`` trees: ``fitted`` grown, the rest deep copies of them (each copy
    its own memory, as a grown tree's; growing them all would take minutes)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(samples, FEATURES))
    y = rng.integers(0, 2, size=samples)  # random labels: trees grow until their leaves are pure
    forest = RandomForestClassifier(n_estimators=fitted, random_state=seed, n_jobs=2).fit(X, y)
    grown = forest.estimators_
    forest.estimators_ = [copy.deepcopy(grown[i % fitted]) for i in range(trees)]
    forest.set_params(n_estimators=trees, n_jobs=None)
    joblib.dump(forest, path)


@contextmanager
def _server(model: Path, workers: int) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    command = [sys.executable, "-m", "restpredict", "serve", str(model), "--port", str(port)]
    command += ["--workers", str(workers), "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchmarkError(f"restpredict serve --workers {workers} did not start")
            time.sleep(0.2)
        yield process, url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _touch(url: str, workers: int) -> None:
    """Predictions over fresh connections, enough for every worker to answer several."""
    rows = np.random.default_rng(2).normal(size=(10, FEATURES)).tolist()
    for _ in range(20 * workers):
        response = httpx.post(f"{url}/predict", json={"features": rows}, timeout=60)
        if response.status_code != 200:
            raise BenchmarkError(f"prediction answered {response.status_code}: {response.text}")


def _roll(
    process: subprocess.Popen[bytes], url: str, served: Path, other: Path, clients: int
) -> dict[str, object]:
    """SIGHUP under load to a second forest: seconds until every worker serves it, failures."""
    new_sha = _sha256(other)
    ok, failures, stop = [0], [], threading.Event()
    row = {"features": np.random.default_rng(3).normal(size=FEATURES).tolist()}

    def client() -> None:
        with httpx.Client(timeout=60) as session:
            while not stop.is_set():
                try:
                    response = session.post(f"{url}/predict", json=row)
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status_code == 200:
                    ok[0] += 1
                else:
                    failures.append(str(response.status_code))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    before = ok[0]
    shutil.copyfile(other, served)
    start = time.monotonic()
    process.send_signal(signal.SIGHUP)
    seconds = None
    while time.monotonic() - start < 300:
        status = httpx.get(f"{url}/metadata", timeout=60).json()
        if status["sha256"] == new_sha and "rollout" not in status:
            seconds = time.monotonic() - start
            break
        time.sleep(0.02)
    time.sleep(2)  # the retired workers' last answers
    stop.set()
    for thread in threads:
        thread.join()
    return {
        "seconds": None if seconds is None else round(seconds, 2),
        "requests": ok[0] - before + len(failures),
        "failed": len(failures),
        "failures": failures[:5],
        "clients": clients,
    }


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def render(doc: dict[str, object]) -> str:
    """The cell as Markdown."""
    n = doc["workers"]
    memory: dict[str, dict[str, float]] = doc["memory"]  # type: ignore[assignment]
    ratio = float(doc["pss_ratio"])  # type: ignore[arg-type]
    roll: dict[str, object] = doc["roll"]  # type: ignore[assignment]
    lines = [
        f"# Workers run of {doc.get('started_at', 'an unknown time')}",
        "",
        "<!-- --8<-- [start:report] -->",
        f"`python -m benchmarks workers`: a random forest of {doc['model_file_mib']} MiB on disk "
        f"served by 1 and {n} workers (forked from the supervisor, which loaded it once).",
        "",
        "| workers | processes | PSS (MiB) | RSS summed (MiB) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for workers, m in memory.items():
        lines.append(
            f"| {workers} | {m['processes']:.0f} | {m['pss_mib']:,.1f} | {m['rss_mib']:,.1f} |"
        )
    met = "met" if ratio <= GOAL_RATIO else "not met"
    lines += [
        "",
        f"- PSS of {n} workers vs 1: **{ratio:.2f}x** (goal <= {GOAL_RATIO}: {met})",
        f"- rolling reload to a second forest under {roll['clients']} keep-alive clients: "
        f"every worker on it after **{roll['seconds']} s**; {roll['failed']} of "
        f"{roll['requests']} requests failed (goal 0)",
        "- load average (1, 5, 15 min) at the end: "
        + ", ".join(f"{x:.2f}" for x in doc["loadavg"]),  # type: ignore[attr-defined]
        "<!-- --8<-- [end:report] -->",
        "",
    ]
    return "\n".join(lines)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
