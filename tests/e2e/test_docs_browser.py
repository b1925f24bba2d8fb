"""The /docs page of a real server, rendered in headless Chromium."""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable

import httpx
import pytest

from tests.openapi.test_docs import CHROMIUM, CHROMIUM_FLAGS
from tests.support.servers import ServerProcess


def chromium(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_docs_page_renders_every_route_in_headless_chromium(
    serve: Callable[..., ServerProcess],
) -> None:
    server = serve("--no-access-log")
    doc = httpx.get(f"{server.url}/openapi.json").json()
    operations = [
        path for path, item in doc["paths"].items() for method in item if method in ("get", "post")
    ]
    result = chromium(f"{server.url}/docs", "--dump-dom")
    assert result.returncode == 0, result.stderr
    dom = result.stdout
    # Swagger UI's rendered operation blocks, one per operation: not the raw JSON.
    rendered = re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom)
    assert sorted(rendered) == sorted(operations)
    for path in ("/predict", "/v2/models/{name}/infer", "/v1/models/{name}:predict"):
        assert path in rendered
    assert "restpredict: iris-demo" in dom
    assert "OAS 3.1" in dom
