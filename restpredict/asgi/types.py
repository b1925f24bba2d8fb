"""Shapes passed between the app factory and the middleware it installs."""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response

from restpredict.errors import RestPredictError

__all__ = ["ProblemRenderer"]

# app.problem_response, handed to middleware so that modules below app.py never import it.
ProblemRenderer = Callable[[RestPredictError, "dict[str, str] | None"], Response]
