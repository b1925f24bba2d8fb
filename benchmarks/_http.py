"""A blocking JSON POST over loopback, for the readiness poll and the correctness gate."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

# Loopback only: never route through a proxy that the environment may name.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post_json(url: str, body: bytes, timeout_s: float) -> tuple[int, Any]:
    """POST ``body`` as JSON; the status and the decoded answer (None if it is not JSON).

    Connection failures raise ``OSError`` (``URLError`` is one); HTTP errors are returned.
    """
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None
