"""Running the app under uvicorn: binding, lifecycle, supervised workers, HTTP protocols."""

from __future__ import annotations

__all__: list[str] = []
