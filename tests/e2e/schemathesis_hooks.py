"""Schemathesis hooks for ``test_openapi_fuzz.py`` (loaded through ``SCHEMATHESIS_HOOKS``).

The document says a feature is any float64, which is what the server accepts. What a
*model* makes of 1.7e308 is its own affair: the test models' StandardScaler overflows to
infinity there, and the server answers as documented (400/422 "the model rejected the
input", or 500 for NaN probabilities). So requests meant to be accepted keep their numbers
within ±1e12; requests meant to be refused are left alone.
"""

from __future__ import annotations

from typing import Any

import schemathesis

LIMIT = 1e12


def _largest(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, (int, float)):
        return abs(value)
    if isinstance(value, dict):
        return max(map(_largest, value.values()), default=0.0)
    if isinstance(value, list):
        return max(map(_largest, value), default=0.0)
    return 0.0


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    """Drop positive cases with numbers a model cannot be expected to take."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return True
    return _largest(case.body) <= LIMIT
