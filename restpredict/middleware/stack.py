"""The protective middleware every app gets, outermost first.

CORS answers browser preflights before anything else; auth refuses strangers before
their body is read or a slot is taken; the limits bound what reaches the routes. (The
serving headers, model SHA-256 and ``Connection: close`` while draining, are added by the
access layer outside all of these, so they cover every answer, 401/503/504/408 included.)
"""

from __future__ import annotations

from starlette.middleware import Middleware

from restpredict.asgi.admission import Admission
from restpredict.asgi.types import ProblemRenderer
from restpredict.middleware.auth import BearerAuth
from restpredict.middleware.cors import cors_middleware
from restpredict.middleware.limits import RequestLimits
from restpredict.settings import Settings

__all__ = ["protective_middleware"]


def protective_middleware(
    settings: Settings, problem: ProblemRenderer, admission: Admission
) -> list[Middleware]:
    """CORS (if origins are named), bearer auth (if a key is set), limits (``admission``)."""
    stack: list[Middleware] = []
    if settings.cors_origins:
        stack.append(cors_middleware(settings.cors_origins))
    if settings.api_key is not None:
        stack.append(
            Middleware(
                BearerAuth,
                token=settings.api_key,
                open_paths=settings.open_paths,
                problem=problem,
            )
        )
    stack.append(
        Middleware(
            RequestLimits,
            body_timeout=settings.body_timeout,
            prediction_timeout=settings.prediction_timeout,
            reload_timeout=settings.reload_timeout,
            problem=problem,
            admission=admission,
        )
    )
    return stack
