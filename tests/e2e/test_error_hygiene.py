"""A model's own exception text reaches the log, never the client; scikit-learn's does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import joblib
import pytest

from tests.support.servers import ServerProcess

from .hostile_models import SECRET, Picky
from .servers import PYTHONPATH

pytestmark = pytest.mark.adversarial


def test_only_scikit_learns_validation_messages_reach_the_client(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    path = tmp_path / "picky.joblib"
    joblib.dump(Picky().fit(), path)
    server = serve(str(path), env=PYTHONPATH)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/predict", json={"features": [2, 1]}).json() == {"predictions": [2]}
        sklearn_says = client.post("/predict", json={"features": [-1, 1]})
        assert sklearn_says.status_code == 422
        assert "Negative values in data passed to Picky" in sklearn_says.json()["detail"]
        leaky = client.post("/predict", json={"features": [13, 1]})
        assert leaky.status_code == 422
        assert leaky.headers["content-type"] == "application/problem+json"
        assert leaky.json()["code"] == "model_rejected_input"
        assert SECRET not in leaky.text and "/srv" not in leaky.text
        request_id = leaky.headers["x-request-id"]
        v2 = client.post(
            "/v2/models/picky/infer",
            json={"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [13, 1]}]},
        )
        assert v2.status_code >= 400 and SECRET not in v2.text
    log = server.output()
    line = next(line for line in log.splitlines() if SECRET in line and request_id in line)
    assert "ValueError" in line
