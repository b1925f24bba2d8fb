"""The HTTP endpoints: core, admin, and the KServe V1, Open Inference V2 and MLflow protocols."""

from __future__ import annotations

__all__: list[str] = []
