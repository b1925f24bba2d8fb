"""What every endpoint stands on: responses, body reading, serving state, the query path."""

from __future__ import annotations

__all__: list[str] = []
