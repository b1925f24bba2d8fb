"""CORS for the origins the settings name (Starlette's middleware, configured once here)."""

from __future__ import annotations

from collections.abc import Collection

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

__all__ = ["cors_middleware"]


def cors_middleware(origins: Collection[str]) -> Middleware:
    """CORS for the named origins only; no credentials (the token travels in a header)."""
    return Middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Retry-After", "X-Model-SHA256"],
        max_age=600,
    )
