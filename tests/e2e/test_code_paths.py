"""--code-path in real server processes: every worker imports the user's modules."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx

import tests.model.test_code_paths as unit
from tests.model.test_code_paths import ROWS
from tests.support.servers import ServerProcess

# Fixtures shared with the unit tests of the same module.
custom = unit.custom


def test_serve_with_code_path_in_every_worker(
    serve: Callable[..., ServerProcess], custom: tuple[Path, Path, list[str]]
) -> None:
    model, features, expected = custom
    args = (str(model), "--code-path", str(features), "--workers", "2")
    server = serve(*args, env={"RESTPREDICT_API_KEY": "k3y"})
    auth = {"Authorization": "Bearer k3y"}
    for _ in range(4):  # both workers answer in turn
        response = httpx.post(
            f"{server.url}/predict", json={"features": ROWS}, headers=auth, timeout=30
        )
        assert response.json() == {"predictions": expected}
    # A reload with several workers restarts them; each new worker unpickles with the code path.
    reload = httpx.post(f"{server.url}/admin/reload", headers=auth, timeout=60)
    assert reload.status_code == 202, reload.text
    deadline = time.monotonic() + 60
    answered = 0
    while answered < 4 and time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            response = httpx.post(
                f"{server.url}/predict", json={"features": ROWS}, headers=auth, timeout=30
            )
            if response.status_code == 200:
                assert response.json() == {"predictions": expected}
                answered += 1
        time.sleep(0.2)
    assert answered == 4
    assert server.process.poll() is None


def test_yaml_code_paths_are_relative_to_the_file(
    serve: Callable[..., ServerProcess], custom: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    model, features, expected = custom
    config = features.parent / "restpredict.yaml"
    config.write_text(f"model: {json.dumps(str(model))}\ncode_paths: [features.py]\n")
    server = serve("--config", str(config))
    response = httpx.post(f"{server.url}/predict", json={"features": ROWS}, timeout=30)
    assert response.json() == {"predictions": expected}
