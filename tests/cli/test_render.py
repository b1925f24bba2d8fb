"""What the CLI renders, captured as text."""

from __future__ import annotations

import io

from rich.console import Console

from restpredict.cli.render import PredictionWriter, metadata_table, startup_panel
from restpredict.model.loading import LoadedModel
from restpredict.settings import Settings


def text_of(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_startup_panel_has_url_and_a_working_curl(iris: LoadedModel) -> None:
    settings = Settings(port=9123)
    text = text_of(startup_panel(iris.metadata(), settings, [0.0, 0.0, 0.0, 0.0]))
    assert "http://127.0.0.1:9123" in text
    assert "curl -s http://127.0.0.1:9123/predict" in text
    assert '{"features": [0.0, 0.0, 0.0, 0.0]}' in text
    assert "reachable from other machines" not in text


def test_startup_panel_warns_when_not_on_loopback(iris: LoadedModel) -> None:
    text = text_of(startup_panel(iris.metadata(), Settings(host="0.0.0.0"), []))
    assert "reachable from other machines" in text
    assert "curl -s http://127.0.0.1:8000" in text  # the curl still targets a usable address
    assert "Serving on http://0.0.0.0:8000" in text  # and the banner says where it listens


def test_metadata_table_lists_columns(frame_model: LoadedModel) -> None:
    text = text_of(metadata_table(frame_model.metadata()))
    assert "size (number), color (string), weight (number)" in text
    assert "classification" in text


def test_writer_formats() -> None:
    document = {"predictions": ["a", "b"], "probabilities": [{"a": 0.9, "b": 0.1}] * 2}
    out = io.StringIO()
    writer = PredictionWriter("csv", out)
    writer.write(document)
    writer.write(document)
    assert out.getvalue().splitlines() == [
        "prediction,proba_a,proba_b",
        "a,0.9,0.1",
        "b,0.9,0.1",
        "a,0.9,0.1",
        "b,0.9,0.1",
    ]
    table_writer = PredictionWriter("table", io.StringIO())
    table_writer.write({"predictions": [1.5]})
    assert "1.5" in text_of(table_writer.table)
