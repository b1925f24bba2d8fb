"""Bytes and tables to arrays and back: request bodies, tensors, CSV/JSON rows. No HTTP."""

from __future__ import annotations

__all__: list[str] = []
