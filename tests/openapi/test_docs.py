"""The docs page: Swagger UI served by the app itself, rendered offline in a real browser."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from restpredict.app import create_app
from restpredict.model.loading import LoadedModel
from restpredict.openapi.docs import ASSETS
from restpredict.settings import Settings

CHROMIUM = shutil.which("chromium")
# What TOOLING.md found to work headless as root; no host but loopback resolves, so the
# page must render from what the server itself sends.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--virtual-time-budget=8000",
]


@pytest.fixture(scope="module")
def client(iris: LoadedModel) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), iris)) as test_client:
        yield test_client


def test_the_page_loads_only_assets_the_server_serves(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    references = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert references, html
    assert not [r for r in references if "//" in r or r.startswith("/")], references
    assert '"openapi.json"' in html
    for reference in references:
        asset = client.get(f"/{reference}")
        assert asset.status_code == 200, reference
        assert asset.headers["content-type"].split(";")[0] in (
            "text/css",
            "text/javascript",
            "image/png",
        )
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text


@pytest.mark.parametrize(
    "name", ["index.html", "swagger-initializer.js", "..%2F__init__.py", "nope.js"]
)
def test_other_files_are_not_served(client: TestClient, name: str) -> None:
    response = client.get(f"/docs/assets/{name}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_every_listed_asset_exists(client: TestClient) -> None:
    for name in ASSETS:
        assert client.head(f"/docs/assets/{name}").status_code == 200, name
