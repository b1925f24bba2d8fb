"""A starter restpredict.yaml read by a real server process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from restpredict.model.loading import LoadedModel
from tests.ship.test_starter import init
from tests.support.servers import ServerProcess


def test_serve_reads_the_starter_config(
    tmp_path: Path, iris_path: Path, iris: LoadedModel, serve: Callable[..., ServerProcess]
) -> None:
    config = tmp_path / "restpredict.yaml"
    assert init(str(iris_path), "-o", str(config))[0] == 0
    server = serve("--config", str(config))
    meta = httpx.get(f"{server.url}/metadata", timeout=10).json()
    assert meta["sha256"] == iris.sha256
    assert meta["name"] == "iris"
