"""Shipping a model: deploy settings, container build contexts, the wheel, starter configs."""

from __future__ import annotations

__all__: list[str] = []
