"""KServe V1 against a real server process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from restpredict.model.loading import LoadedModel
from tests.routes.test_kserve_v1 import ROWS, error
from tests.support.servers import ServerProcess


def test_kserve_sample_against_a_real_server(
    serve: Callable[..., ServerProcess], iris_path: Path, iris: LoadedModel
) -> None:
    server = serve(str(iris_path), "--model-name", "sklearn-iris")
    assert httpx.get(f"{server.url}/v1/models").json() == {"models": ["sklearn-iris"]}
    status = httpx.get(f"{server.url}/v1/models/sklearn-iris")
    assert status.json() == {"name": "sklearn-iris", "ready": True}
    # KServe's docs post with curl -d and no Content-Type; that must work too.
    response = httpx.post(
        f"{server.url}/v1/models/sklearn-iris:predict",
        content=httpx.Request("POST", "/", json={"instances": ROWS}).content,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.json() == {"predictions": iris.estimator.predict(np.array(ROWS)).tolist()}
    wrong = httpx.post(f"{server.url}/v1/models/sklearn-iris:predict", json={"instances": [[1]]})
    assert error(wrong, 400) == "expected 4 features per row, got 1"
    assert "not served here" in error(httpx.get(f"{server.url}/v1/models/iris"), 404)
