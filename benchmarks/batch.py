"""``python -m benchmarks batch``: scoring a big Parquet table, against loading it whole.

Generates an N-row (default 10 million), 30-column float64 Parquet file (breast-cancer rows with
noise, written in pyarrow's default one-million-row row groups), fits the logistic-regression
pipeline of the serving benchmark, then runs, one after another in fresh processes:

- ``in-memory``: ``pq.read_table``, one matrix, one ``model.predict`` (the baseline);
- ``restpredict``: ``restpredict predict --model M --input T --output out.parquet``, on its
  default backend (the pipeline's exact fast path, as ``serve`` uses it);
- ``restpredict (backend sklearn)``: the same with ``RESTPREDICT_BACKEND=sklearn``, scikit-learn's
  own ``predict`` per batch: what the streaming alone is worth;
- ``restpredict --jobs N``: the default backend with N predicting processes (default 2).

Each process's peak RSS is its own ``ru_maxrss``, taken by a small launcher
(``benchmarks.peak_rss``): measured from this driver, a child's peak would start at the
driver's size. Throughput is rows per second of each run's own work: for restpredict the
seconds its summary line reports (read, validate, predict, write; not interpreter start-up),
for the baseline the predict call alone (``predict rows/s``) and load plus predict
(``load+predict rows/s``). Every run's labels are checked equal to the baseline's. The goal
(issue 14): restpredict >= 0.9x the baseline's predict rows/s, with peak RSS <= 1/5 of its.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.errors import BenchmarkError
from benchmarks.models import MODELS, load_features
from benchmarks.results import RESULTS_DIR, STAMP_FORMAT, write_text

ROW_GROUP = 1 << 20  # pyarrow's default row group length
_SUMMARY = re.compile(r"rows in ([\d,]+) .* ([\d.]+) s ")
GOAL_THROUGHPUT, GOAL_RSS = 0.9, 0.2
SKLEARN = "sklearn"  # RESTPREDICT_BACKEND for the run on scikit-learn's own predict


@dataclass(frozen=True)
class Run:
    """One scoring process: what it did, how long, its peak memory."""

    name: str
    seconds: float
    peak_rss_mb: float
    wall_s: float
    load_s: float = 0.0

    def rows_per_s(self, rows: int) -> float:
        """Rows per second of this run's own work."""
        return rows / self.seconds


def build_parser() -> argparse.ArgumentParser:
    """Flags: table size, jobs, where results go."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks batch", description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000, help="table rows (default 10M)")
    parser.add_argument("--jobs", type=int, default=2, help="--jobs for the second run")
    parser.add_argument("--workdir", type=Path, help="where the table goes (default: a temp dir)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return parser


def rerender(path: Path) -> str:
    """The report of a run's JSON (``benchmarks/results/*-batch.json``), drawn again."""
    return render(json.loads(path.read_text()))


def main(argv: Sequence[str]) -> int:
    """Run the batch cell; 0 when measured (goals are reported, not enforced), 2 on failure."""
    args = build_parser().parse_args(argv)
    started = datetime.now(timezone.utc)
    try:
        with tempfile.TemporaryDirectory(prefix="restpredict-batch-", dir=args.workdir) as tmp:
            document = measure(Path(tmp), args.rows, args.jobs)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    document["started_at"] = started.isoformat(timespec="seconds")
    report = render(document)
    print(report)
    stamp = started.strftime(STAMP_FORMAT)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    write_text(args.results_dir / f"{stamp}-batch.json", json.dumps(document, indent=2) + "\n")
    write_text(args.results_dir / f"{stamp}-batch.md", report)
    return 0


def measure(directory: Path, rows: int, jobs: int) -> dict[str, object]:
    """Generate, run the three, check answers; the numbers as a JSON-able document."""
    model_path, table_path = _prepare(directory, rows)
    expected = directory / "baseline.npy"
    baseline = _baseline(model_path, table_path, expected)
    serial = _restpredict(model_path, table_path, directory / "serial.parquet", 1)
    plain = _restpredict(model_path, table_path, directory / "sklearn.parquet", 1, SKLEARN)
    parallel = _restpredict(model_path, table_path, directory / "jobs.parquet", jobs)
    labels = np.load(expected)
    outputs = ((serial, "serial.parquet"), (plain, "sklearn.parquet"), (parallel, "jobs.parquet"))
    for run, out in outputs:
        got = pq.read_table(directory / out, columns=["prediction"])["prediction"].to_numpy()
        if not np.array_equal(got, labels):
            raise BenchmarkError(f"{run.name}: predictions differ from model.predict")
    predict_rate = rows / baseline.seconds
    return {
        "rows": rows,
        "columns": 30,
        "jobs": jobs,
        "loadavg": os.getloadavg(),
        "runs": [asdict(r) for r in (baseline, serial, plain, parallel)],
        "baseline_predict_rows_per_s": predict_rate,
        "baseline_load_predict_rows_per_s": rows / (baseline.seconds + baseline.load_s),
        "restpredict_rows_per_s": serial.rows_per_s(rows),
        "jobs_rows_per_s": parallel.rows_per_s(rows),
        "ratio_to_predict": serial.rows_per_s(rows) / predict_rate,
        "sklearn_ratio_to_predict": plain.rows_per_s(rows) / predict_rate,
        "ratio_to_load_predict": serial.seconds
        and (baseline.seconds + baseline.load_s) / serial.seconds,
        "rss_ratio": serial.peak_rss_mb / baseline.peak_rss_mb,
        "jobs_speedup": serial.seconds / parallel.seconds,
        "jobs_rss_ratio": parallel.peak_rss_mb / baseline.peak_rss_mb,
    }


def _prepare(directory: Path, rows: int) -> tuple[Path, Path]:
    features, labels = load_features()
    model_path = directory / "lr.joblib"
    joblib.dump(MODELS["lr"]().fit(features, labels), model_path)
    table_path = directory / "table.parquet"
    rng = np.random.default_rng(0)
    scale = features.std(axis=0) * 0.1
    schema = pa.schema([(f"f{j}", pa.float64()) for j in range(features.shape[1])])
    _progress(f"writing {rows:,} x {features.shape[1]} rows to {table_path}")
    with pq.ParquetWriter(table_path, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            block = features[rng.integers(0, len(features), n)] + rng.normal(size=(n, 30)) * scale
            writer.write_table(pa.Table.from_arrays(list(block.T), schema=schema))
    return model_path, table_path


def _baseline(model: Path, table: Path, predictions: Path) -> Run:
    argv = [sys.executable, "-m", "benchmarks.baselines.in_memory", str(model), str(table)]
    out, _, rss, wall = _run("in-memory", [*argv, str(predictions)])
    line = next(x for x in out.splitlines() if x.startswith("BASELINE_JSON "))
    times = json.loads(line.removeprefix("BASELINE_JSON "))
    return Run("in-memory", times["predict_s"], rss, wall, load_s=times["load_s"])


def _restpredict(
    model: Path, table: Path, output: Path, jobs: int, backend: str | None = None
) -> Run:
    name = "restpredict" if jobs == 1 else f"restpredict --jobs {jobs}"
    name += f" (backend {backend})" if backend else ""
    env = {**os.environ, "RESTPREDICT_BACKEND": backend} if backend else None
    argv = [sys.executable, "-m", "restpredict", "predict", "-m", str(model), "-i", str(table)]
    _, err, rss, wall = _run(name, [*argv, "-o", str(output), "--jobs", str(jobs)], env)
    match = _SUMMARY.search(err)
    if match is None:
        raise BenchmarkError(f"{name}: no summary line in {err!r}")
    return Run(name, float(match.group(2)), rss, wall)


def _run(
    name: str, argv: list[str], env: dict[str, str] | None = None
) -> tuple[str, str, float, float]:
    """Run to completion; its stdout, stderr, peak RSS (MiB) and wall seconds."""
    _progress(f"{name}: {' '.join(argv[1:])}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="restpredict-peak-") as tmp:
        peak_file = Path(tmp) / "peak"
        measured = [sys.executable, "-m", "benchmarks.peak_rss", str(peak_file), "--", *argv]
        done = subprocess.run(measured, capture_output=True, text=True, check=False, env=env)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise BenchmarkError(f"{name} exited {done.returncode}: {done.stderr.strip()[-500:]}")
        peak = int(peak_file.read_text()) / 1024
    stdout, stderr = done.stdout, done.stderr
    _progress(f"{name}: {wall:.1f} s wall, peak RSS {peak:,.0f} MiB")
    return stdout, stderr, peak, wall


def render(doc: dict[str, object]) -> str:
    """The cell as Markdown: a table of runs, then the ratios and the goals."""
    rows = int(doc["rows"])  # type: ignore[call-overload]
    lines = [
        f"# Batch scoring run of {doc.get('started_at', 'an unknown time')}",
        "",
        "<!-- --8<-- [start:report] -->",
        f"`python -m benchmarks batch --rows {rows} --jobs {doc['jobs']}`: {rows:,} rows x 30 "
        "float64 columns of Parquet (1,048,576-row row groups), the logistic-regression "
        "pipeline; each run a fresh process, one after another.",
        "",
        "| run | rows/s | seconds | peak RSS (MiB) | wall incl. start (s) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for run in doc["runs"]:  # type: ignore[attr-defined]
        label = run["name"] + (" (predict only)" if run["name"] == "in-memory" else "")
        seconds = run["seconds"]
        lines.append(
            f"| {label} | {rows / seconds:,.0f} | {seconds:.1f} | {run['peak_rss_mb']:,.0f} "
            f"| {run['wall_s']:.1f} |"
        )
    t = doc["ratio_to_predict"]
    r = doc["rss_ratio"]
    lines += [
        "",
        f"- restpredict rows/s vs in-memory `model.predict`: **{t:.2f}x** "
        f"(goal >= {GOAL_THROUGHPUT}: {'met' if t >= GOAL_THROUGHPUT else 'not met'}); "  # type: ignore[operator]
        f"vs load + predict: {doc['ratio_to_load_predict']:.2f}x",
        *(
            [f"- on scikit-learn's own `predict` (backend sklearn): {plain:.2f}x"]
            if (plain := doc.get("sklearn_ratio_to_predict")) is not None
            else []
        ),
        f"- peak RSS vs in-memory: **{r:.2f}x** "
        f"(goal <= {GOAL_RSS}: {'met' if r <= GOAL_RSS else 'not met'})",  # type: ignore[operator]
        f"- `--jobs {doc['jobs']}` speedup: {doc['jobs_speedup']:.2f}x "
        f"(peak RSS {doc['jobs_rss_ratio']:.2f}x in-memory, all processes' peaks not summed)",
        "- load average (1, 5, 15 min) at the end: "
        + ", ".join(f"{x:.2f}" for x in doc["loadavg"]),  # type: ignore[attr-defined]
        "<!-- --8<-- [end:report] -->",
        "",
    ]
    return "\n".join(lines)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
