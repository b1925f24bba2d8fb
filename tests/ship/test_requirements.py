"""Merging an MLflow model's requirements.txt into the image's pins."""

from __future__ import annotations

import importlib.metadata as metadata

from restpredict.ship.requirements import merge_recorded

PINS = {"numpy": "2.4.6", "scikit-learn": "1.9.1", "scipy": "1.17.1"}


def test_names_only_mlflow_lists_are_added_at_its_version() -> None:
    merged = merge_recorded(PINS, ["tabulate==0.9.0", "numpy==2.4.6"])
    assert merged.pins == {**PINS, "tabulate": "0.9.0"}
    assert merged.added == ("tabulate",)
    assert merged.notes == ()


def test_a_range_takes_the_installed_version_that_satisfies_it() -> None:
    installed = metadata.version("packaging")
    merged = merge_recorded(PINS, ["packaging>=20"])
    assert merged.pins["packaging"] == installed


def test_a_conflict_keeps_the_image_pin_and_says_so() -> None:
    merged = merge_recorded(PINS, ["numpy==1.26.4", "scipy>=1.0"])
    assert merged.pins == PINS
    (note,) = merged.notes
    assert note.startswith("conflict: the model's MLflow requirements.txt pins numpy==1.26.4")
    assert "the image pins numpy==2.4.6" in note and "keeps 2.4.6" in note


def test_mlflow_itself_and_scikit_learn_are_not_taken_from_the_file() -> None:
    # scikit-learn comes from MLmodel's sklearn_version (pinned by render_requirements).
    recorded = ["mlflow==3.17.0", "mlflow-skinny==3.17.0", "scikit-learn==1.5.0"]
    merged = merge_recorded(PINS, recorded)
    assert merged.pins == PINS
    assert merged.notes == ()


def test_what_cannot_be_pinned_is_left_out_with_a_note() -> None:
    merged = merge_recorded(PINS, ["surely-not-installed-dist>=1", "-e ./local", "numpy"])
    assert merged.pins == PINS
    assert len(merged.notes) == 2
    assert "surely-not-installed-dist>=1" in merged.notes[0]
    assert "not a requirement" in merged.notes[1]
