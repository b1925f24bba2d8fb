"""uvicorn's HTTP protocols with the header deadline (and, for httptools, one write)."""

from __future__ import annotations

__all__: list[str] = []
