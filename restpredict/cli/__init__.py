"""The ``restpredict`` command (``restpredict.cli:app``): a thin skin over the library."""

from __future__ import annotations

from restpredict.cli.main import app

__all__ = ["app"]
