"""The ASGI middleware, one per module, and the stack every app gets."""

from __future__ import annotations

__all__: list[str] = []
