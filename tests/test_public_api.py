"""Every module's ``__all__`` names only what exists, and the package exports its API."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import restpredict

MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(restpredict.__path__, "restpredict.")
    if not name.rsplit(".", 1)[-1].startswith("_") and name != "restpredict.__main__"
)


@pytest.mark.parametrize("name", ["restpredict", *MODULES])
def test_all_is_honest(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        pytest.skip(f"{name} has no __all__")
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names missing objects: {missing}"
    assert sorted(exported) == sorted(set(exported)), f"{name}.__all__ has duplicates"


def test_package_api() -> None:
    assert callable(restpredict.create_app)
    assert callable(restpredict.load_model)
    assert restpredict.__version__


def test_every_subpackage_is_packaged() -> None:
    """pyproject lists packages explicitly (templates/ is mapped in), so a new one must be added."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    found = {
        name
        for _, name, ispkg in pkgutil.walk_packages(restpredict.__path__, "restpredict.")
        if ispkg
    }
    assert found | {"restpredict", "restpredict.templates"} == listed
