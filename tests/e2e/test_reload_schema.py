"""A reload that would break clients is refused, says why, and gives its memory back."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import joblib
import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression

from tests.support.servers import ServerProcess

KEY = "reload-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_schema_change_is_refused_unless_allowed_and_its_memory_freed(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 13)), np.arange(60) % 2
    path = tmp_path / "model.joblib"
    joblib.dump(LogisticRegression().fit(X, y), path)
    key = tmp_path / "key"
    key.write_text(KEY)
    server = serve(str(path), "--api-key-file", str(key))
    pid = server.process.pid
    # A regressor on 10 features with ~115 MiB of ballast: memory a refusal must give back.
    heavy = LinearRegression().fit(rng.normal(size=(60, 10)), rng.normal(size=60))
    heavy.ballast_ = rng.normal(size=(15_000_000,))
    joblib.dump(heavy, tmp_path / "heavy.joblib")
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
        assert client.post("/predict", json={"features": [0.0] * 13}).status_code == 200
        before = _rss_mib(pid)
        shutil.copy(tmp_path / "heavy.joblib", path)
        after: list[float] = []
        for _ in range(3):
            refused = client.post("/admin/reload")
            assert refused.status_code == 409, refused.text
            detail = refused.json()["detail"]
            assert "feature count 13 -> 10" in detail
            assert "task classification -> regression" in detail
            assert "allow_schema_change" in detail
            after.append(_rss_mib(pid))
        # Refused files do not pile up (three refused 1 GB files held 3.2 GiB): what the
        # allocator keeps of one load is reused by the next, with no traffic to trigger a GC.
        assert after[-1] - after[0] < 60, (before, after)
        assert after[-1] - before < 250, (before, after)
        assert client.post("/predict", json={"features": [0.0] * 13}).status_code == 200
        allowed = client.post("/admin/reload", json={"allow_schema_change": True})
        assert allowed.status_code == 200, allowed.text
        assert client.get("/metadata").json()["n_features"] == 10


def test_the_demo_honours_a_reloads_pin(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    key = tmp_path / "key"
    key.write_text(KEY)
    server = serve("--api-key-file", str(key))
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
        demo_sha = client.get("/metadata").json()["sha256"]
        wrong = client.post("/admin/reload", json={"sha256": "0" * 64})
        assert wrong.status_code == 409 and "0" * 64 in wrong.json()["detail"]
        assert client.post("/admin/reload", json={"sha256": demo_sha}).status_code == 200
