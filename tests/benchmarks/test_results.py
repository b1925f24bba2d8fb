"""A run's files (benchmarks/results.py, report.py, chart.py), on made-up numbers: the JSON and
Markdown written per run, the report and chart redrawn from the JSON. Nothing here runs wrk."""

from __future__ import annotations

import json
import struct
from datetime import datetime, timezone
from pathlib import Path

import pytest

from benchmarks import batch, overload
from benchmarks.chart import chart_data, render_png
from benchmarks.cli import main
from benchmarks.errors import BenchmarkError
from benchmarks.goals import evaluate
from benchmarks.report import render_markdown
from benchmarks.results import read_json, run_facts, to_dict, write_run
from benchmarks.runner import Results
from benchmarks.types import Cell, LoadResult, RunConfig, ServerReport

REPO = Path(__file__).resolve().parents[2]
STARTED = datetime(2026, 11, 27, 10, 46, 31, tzinfo=timezone.utc)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def cell(target: str, model: str, rows: int, clients: int, rps: float, p99: float = 4.0) -> Cell:
    return Cell(target, model, rows, clients, LoadResult(int(rps * 10), 10.0, 3.0, p99, 9.0, 0, 0))


def document(notes: str | None = None) -> dict[str, object]:
    config = RunConfig(("ceiling", "naive", "restpredict"), ("lr", "rf"), (1,), (1, 32), 10, 2,
                       (), 60.0, 0, 1, rounds=3, launches=2)  # fmt: skip
    results = Results(
        servers=[
            ServerReport("ceiling", "-", 0.2, 35.0, "exempt (constant by design)", None, (0.2,)),
            ServerReport("naive", "lr", 1.5, 170.0, "ok", None, (1.6, 1.5, 1.4)),
            ServerReport("restpredict", "lr", 1.45, 180.0, "ok", None, (1.5, 1.45, 1.4)),
        ],
        cells=[
            cell("ceiling", "-", 1, 1, 8_000),
            cell("naive", "lr", 1, 1, 1_200),
            cell("restpredict", "lr", 1, 1, 1_300),
            cell("ceiling", "-", 1, 32, 10_000),
            cell("naive", "lr", 1, 32, 1_400),
            cell("restpredict", "lr", 1, 32, 8_100),
            cell("restpredict", "rf", 1, 32, 2_500),
        ],
        loadavg_at_start=(0.5, 0.6, 0.7),
    )
    checks = evaluate(results.cells, results.servers, "restpredict")
    facts = run_facts(STARTED, ["--rounds", "3"], "restpredict", notes)
    # As the file holds it: tuples become lists.
    return json.loads(json.dumps(to_dict(config, results, checks, run=facts)))


def test_a_run_writes_its_json_and_report_named_by_its_utc_start(tmp_path: Path) -> None:
    doc = document(notes="The machine was *busy*.")
    json_path, md_path = write_run(tmp_path / "results", doc)
    assert (json_path.name, md_path.name) == ("2026-11-27T1046Z.json", "2026-11-27T1046Z.md")
    assert sorted(p.name for p in json_path.parent.iterdir()) == [json_path.name, md_path.name]
    assert read_json(json_path) == doc
    assert doc["run"]["started_at"] == "2026-11-27T10:46:31Z"
    assert doc["run"]["command"] == "python -m benchmarks --rounds 3"
    report = md_path.read_text()
    assert report == render_markdown(doc)
    assert report.startswith("# Benchmark run of 2026-11-27 10:46:31 UTC\n")
    assert (
        "| restpredict | lr | 1 | 32 | 8,100 | 8,100 | 3.00 | 4.00 | 0.81 | 5.79 | 0 | 0 |"
        in report
    )
    assert "| restpredict | lr | 1.45 | 3: 1.40-1.50 | 180 | ok |  |" in report
    assert "| lr 1 row(s) x 32 client(s): req/s >= 0.8x ceiling | 0.81x | PASS |" in report
    assert "| rf 1 row(s) x 32 client(s): req/s >= 0.25x ceiling | 0.25x | PASS |" in report
    assert "| lr 100 row(s) x 32 client(s): req/s >= 1x ceiling | - | SKIP |" in report
    assert "### Notes\n\nThe machine was *busy*.\n" in report
    # The section the performance page includes, around everything but the title.
    assert report.index("<!-- --8<-- [start:report] -->") < report.index("### Load")
    assert report.rstrip().endswith("<!-- --8<-- [end:report] -->")


def test_a_second_run_in_the_same_minute_gets_its_own_files(tmp_path: Path) -> None:
    first = write_run(tmp_path, document())
    before = first[0].read_bytes()
    second = write_run(tmp_path, document(notes="again"))
    assert [p.name for p in second] == ["2026-11-27T1046Z-2.json", "2026-11-27T1046Z-2.md"]
    assert first[0].read_bytes() == before


def test_values_a_file_does_not_hold_show_as_dashes() -> None:
    doc = document()
    doc["cells"][2].update(socket_errors=None, p99_ms=None, ratio_to_naive=None)
    doc["servers"][1].update(launches={"count": 4, "min_s": None, "max_s": None}, startup_s=None)
    report = render_markdown(doc)
    assert "| restpredict | lr | 1 | 1 | 1,300 | 1,300 | 3.00 | - | 0.16 | - | 0 | - |" in report
    assert "| naive | lr | - | 4 | 170 | ok |  |" in report


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "cannot read", id="missing"),
        pytest.param("{not json", "is not JSON", id="not-json"),
        pytest.param('{"servers": []}', "not a benchmark results file", id="no-cells"),
    ],
)
def test_unreadable_results_are_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "run.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BenchmarkError, match=message):
        read_json(path)


def test_chart_data_is_each_target_over_the_ceiling_per_load_and_model() -> None:
    data = chart_data(document())
    assert data.title.startswith("restpredict benchmark, 2026-11-27 10:46 UTC")
    assert data.title.endswith(": req/s relative to the ceiling server")
    assert data.loads == ((1, 1), (1, 32))
    assert data.panels == {
        "lr": {"naive": [0.15, 0.14], "restpredict": [0.1625, 0.81]},
        "rf": {"restpredict": [None, 0.25]},  # rf was measured on one load only; no naive rf
    }


def test_the_chart_is_a_png_drawn_from_the_data() -> None:
    data = chart_data(document())
    png = render_png(data)
    assert png.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert (width, height) == (1100, 800)  # 11 x (3.6 per model x 2 + 0.8) inches at 100 dpi
    assert render_png(data) == png  # no timestamp or version inside: redrawing changes nothing
    other = document()
    other["cells"][5]["requests_per_s"] = 2_000.0
    assert render_png(chart_data(other)) != png


def test_cli_redraws_the_chart_and_the_report_from_a_results_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_path, md_path = write_run(tmp_path, document())
    md_path.unlink()
    assert main(["report", str(json_path)]) == 0
    assert md_path.read_text() == render_markdown(read_json(json_path))
    chart = tmp_path / "assets" / "chart.png"
    assert main(["chart", str(json_path), "--output", str(chart)]) == 0
    assert chart.read_bytes() == render_png(chart_data(read_json(json_path)))
    assert main(["chart", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read ") and err.count("\n") == 1


def test_the_committed_run_report_is_rendered_from_its_json() -> None:
    # The load benchmark's runs: other benchmarks keep their own files there (``-batch``).
    runs = [
        path
        for path in sorted((REPO / "benchmarks" / "results").glob("*.json"))
        if "cells" in json.loads(path.read_text())
    ]
    assert runs, "benchmarks/results/ holds at least the latest run"
    for path in runs:
        assert path.with_suffix(".md").read_text() == render_markdown(read_json(path))
    # The batch cell (python -m benchmarks batch) keeps its runs beside, named *-batch.
    for path in sorted((REPO / "benchmarks" / "results").glob("*-batch.json")):
        assert path.with_suffix(".md").read_text() == batch.rerender(path)
    # So does the overload cell (python -m benchmarks overload), named *-overload; its runs
    # made with wrk, before h2load, keep the report of their time (other columns).
    for path in sorted((REPO / "benchmarks" / "results").glob("*-overload.json")):
        if json.loads(path.read_text()).get("load_generator") == "h2load":
            assert path.with_suffix(".md").read_text() == overload.rerender(path)
    # The performance page shows the latest run.
    page = (REPO / "docs" / "performance.md").read_text()
    assert f'--8<-- "benchmarks/results/{runs[-1].with_suffix(".md").name}:report"' in page
