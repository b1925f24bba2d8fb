"""What the server records: the per-request exchange, metrics, logs, loop-turn queues."""

from __future__ import annotations

__all__: list[str] = []
