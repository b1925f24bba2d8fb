"""A reload or repository load may take longer than a prediction: its own bound, reload_timeout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import joblib

from tests.support.servers import ServerProcess

from .hostile_models import SlowToLoad
from .servers import PYTHONPATH

KEY = "reload-timeout-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
#: Unpickling the new file takes this long: well over the prediction timeout below.
LOAD_SECONDS = 3.0
LIMITS = ("--prediction-timeout", "1", "--reload-timeout", "120")


def test_a_reload_slower_than_a_prediction_may_be_answers(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(SlowToLoad().fit(), path)
    key = tmp_path / "key"
    key.write_text(KEY)
    server = serve(str(path), "--api-key-file", str(key), *LIMITS, env=PYTHONPATH)
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
        before = client.get("/metadata").json()["sha256"]
        joblib.dump(SlowToLoad(load_delay=LOAD_SECONDS).fit(), path)
        reloaded = client.post("/admin/reload")
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["sha256"] not in (before, None)
        assert client.get("/metadata").json()["sha256"] == reloaded.json()["sha256"]
        assert client.post("/predict", json={"features": [4.5, 0]}).json() == {"predictions": [4.5]}


def test_a_repository_load_slower_than_a_prediction_may_be_answers(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    joblib.dump(SlowToLoad().fit(), folder / "slow.joblib")
    server = serve("--model-dir", str(folder), *LIMITS, env=PYTHONPATH)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        joblib.dump(SlowToLoad(load_delay=LOAD_SECONDS).fit(), folder / "slow.joblib")
        loaded = client.post("/v2/repository/models/slow/load")
        assert loaded.status_code == 200, loaded.text
        index = client.post("/v2/repository/index").json()
        assert [(m["name"], m["state"]) for m in index] == [("slow", "READY")]
        answer = client.post("/models/slow/predict", json={"features": [4.5, 0]})
        assert answer.json() == {"predictions": [4.5]}
