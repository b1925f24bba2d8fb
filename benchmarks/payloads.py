"""Request bodies: ``{"features": [30 floats]}`` for one row, a list of rows for more."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.models import Features
from benchmarks.types import Payload


def encode(rows: Features) -> bytes:
    """The JSON body for ``rows``: a flat list for a single row, a list of lists otherwise."""
    features = rows[0].tolist() if len(rows) == 1 else rows.tolist()
    return json.dumps({"features": features}).encode()


def build(rows: int, features: Features, models: dict[str, Any], directory: Path) -> Payload:
    """A payload of the first ``rows`` rows, saved for wrk, with each model's local predictions."""
    sample = features[:rows]
    body = encode(sample)
    path = directory / f"payload-{rows}.json"
    path.write_bytes(body)
    expected = {name: [int(y) for y in model.predict(sample)] for name, model in models.items()}
    return Payload(rows=rows, body=body, path=path, expected=expected)
