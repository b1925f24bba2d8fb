"""The OpenAPI 3.1 document (one path-item module per route module) and the docs page."""

from __future__ import annotations

__all__: list[str] = []
