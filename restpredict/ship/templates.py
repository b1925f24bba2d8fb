"""Render the Jinja2 templates shipped in ``restpredict.templates`` (package data).

Templates are read with ``importlib.resources``, so they load the same from an editable
install, an installed wheel or a zip. ``StrictUndefined``: a name missing from the context is
an error, never an empty string in a Dockerfile.
"""

from __future__ import annotations

import functools
from importlib.resources import files
from typing import Any

from jinja2 import Environment, FunctionLoader, StrictUndefined

__all__ = ["render_template"]


def _source(name: str) -> str:
    return files("restpredict.templates").joinpath(name).read_text(encoding="utf-8")


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=FunctionLoader(_source),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # Dockerfiles and YAML, not HTML; the templates quote for their format
    )


def render_template(template: str, /, **context: Any) -> str:
    """The template file ``template`` rendered with ``context``."""
    return _environment().get_template(template).render(**context)
