"""The model: loading and verifying files, its schema, compiled backends, the demo."""

from __future__ import annotations

__all__: list[str] = []
