"""The correctness gate: a server is timed only once it answers as the model's local ``predict``.

The ceiling answers a constant by design, so it is exempt and reported as such.
"""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks._http import post_json
from benchmarks.types import Payload

EXEMPT = "exempt (constant by design)"
PASSED = "ok"

_TIMEOUT_S = 10.0


def check(url: str, model: str, payloads: Sequence[Payload]) -> str | None:
    """None if every payload's predictions match; otherwise what went wrong, for the report."""
    for payload in payloads:
        status, answer = post_json(url, payload.body, timeout_s=_TIMEOUT_S)
        expected = payload.expected[model]
        got = answer.get("predictions") if isinstance(answer, dict) else answer
        if status != 200 or got != expected:
            return (
                f"{payload.rows} row(s): HTTP {status}, expected predictions {_short(expected)}, "
                f"got {_short(answer)}"
            )
    return None


def _short(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
