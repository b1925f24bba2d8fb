"""Several workers, one source of truth: the model the supervisor verified, whatever the disk says.

Real ``restpredict serve --workers N`` processes: workers are killed, model files and TLS keys
are changed under them, and what clients see is checked answer by answer.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from benchmarks.workers import pss_tree
from tests.support.models import sha256
from tests.support.servers import ServerProcess, close, free_port, spawn, wait_ready

from .certificates import Authority
from .servers import workers_of

QUIET = ("--log-level", "warning")


def wait_for_workers(pid: int, count: int, *, other_than: set[int] = frozenset()) -> set[int]:
    """The supervisor's workers once ``count`` of them are up (none of ``other_than``)."""
    deadline = time.monotonic() + 60
    while len(found := workers_of(pid) - other_than) < count:
        assert time.monotonic() < deadline, f"workers of {pid}: {workers_of(pid)}"
        time.sleep(0.05)
    return found


def served_hashes(url: str, n: int = 30, **options: object) -> set[str]:
    """SHA-256s ``/metadata`` names over ``n`` fresh connections (spread over the workers)."""
    found = set()
    for _ in range(n):
        response = httpx.get(f"{url}/metadata", **options)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        found.add(response.json()["sha256"])
    return found


@pytest.mark.adversarial
@pytest.mark.parametrize("change", ["truncated", "another-model"])
def test_a_replaced_worker_serves_the_verified_model_not_the_file_on_disk(
    serve: Callable[..., ServerProcess],
    tmp_path: Path,
    iris_path: Path,
    iris_int_path: Path,
    change: str,
) -> None:
    model = tmp_path / "model.joblib"
    shutil.copyfile(iris_path, model)
    server = serve(str(model), "--workers", "2", *QUIET)
    pid = server.process.pid
    before = wait_for_workers(pid, 2)
    if change == "truncated":
        model.write_bytes(iris_path.read_bytes()[:100])
    else:
        shutil.copyfile(iris_int_path, model)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    wait_for_workers(pid, 2, other_than={victim})
    assert served_hashes(server.url) == {sha256(iris_path)}
    predicted = httpx.post(f"{server.url}/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
    assert predicted.status_code == 200 and predicted.json()["predictions"] == ["setosa"]
    ready = httpx.get(f"{server.url}/health/ready")
    assert ready.status_code == 200 and ready.json()["workers"] == {"serving": 2, "wanted": 2}
    assert server.process.poll() is None


def wait_dead(pid: int) -> None:
    """Until ``pid`` has exited (a zombie not yet reaped by the supervisor, or gone)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state in ("Z", "X"):
            return
        assert time.monotonic() < deadline, f"process {pid} still running ({state})"
        time.sleep(0.01)


@contextlib.contextmanager
def https_workers(cert: Path, key: Path, ca: Path, *args: str) -> Iterator[ServerProcess]:
    """``serve ARGS --workers 2`` over TLS; stopped (SIGTERM, then SIGKILL) at the end."""
    port = free_port()
    command = [sys.executable, "-m", "restpredict", "serve", *args, "--workers", "2", *QUIET]
    tls = ["--tls-cert", str(cert), "--tls-key", str(key), "--port", str(port)]
    server = spawn([*command, *tls], f"https://127.0.0.1:{port}")
    try:
        wait_ready(server, verify=_context(ca))
        yield server
    finally:
        close(server)


def _context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


@pytest.mark.adversarial
def test_a_replacement_that_cannot_start_is_retried_while_the_others_serve(
    tmp_path: Path,
) -> None:
    """The TLS key the workers read at start goes missing: a killed worker's replacement cannot
    start. The healthy worker keeps serving, readiness says the server is degraded, and the
    replacement comes up once the key is back; with no worker left, the server exits 3."""
    ca = Authority(tmp_path, "test-ca")
    cert, key = ca.issue("server", server=True)
    kept = tmp_path / "kept.key"
    with https_workers(cert, key, ca.pem) as server:
        process, url = server.process, server.url
        verify = _context(ca.pem)

        def get(path: str) -> httpx.Response:
            return httpx.get(f"{url}{path}", verify=verify)

        first = wait_for_workers(process.pid, 2)
        shutil.move(key, kept)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        # Until it is dead: still running, it may accept the next request and then reset it.
        wait_dead(victim)
        deadline = time.monotonic() + 30
        while "did not start" not in (ready := get("/health/ready")).json().get("problem", ""):
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.1)
        assert ready.status_code == 200, ready.text
        assert ready.headers["x-degraded"] == "1/2 workers serving"
        assert ready.json()["degraded"] is True
        v2 = get("/v2/health/ready")
        assert v2.status_code == 200 and v2.headers["x-degraded"] == "1/2 workers serving"
        for _ in range(20):  # the healthy worker answers every request meanwhile
            body = {"features": [5.1, 3.5, 1.4, 0.2]}
            answer = httpx.post(f"{url}/predict", json=body, verify=verify)
            assert answer.status_code == 200
        assert process.poll() is None
        shutil.move(kept, key)  # the retry (with backoff) now succeeds
        deadline = time.monotonic() + 30
        while "x-degraded" in (ready := httpx.get(f"{url}/health/ready", verify=verify)).headers:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.2)
        assert ready.json()["workers"] == {"serving": 2, "wanted": 2}
        shutil.move(key, kept)
        for pid in workers_of(process.pid):
            os.kill(pid, signal.SIGKILL)
        code = process.wait(timeout=60)  # five failed starts, backoff 0.5 + 1 + 2 + 4 s
        log = server.logged()
        assert code == 3, log
        assert "starts in a row failed" in log
        # The last failure before stopping says so, and promises no retry.
        lines = [line for line in log.splitlines() if "did not start" in line or "stopping" in line]
        assert "starts in a row failed: stopping" in lines[-1], log
        assert "5 failed in a row" in lines[-2] and "retrying" not in lines[-2], log


def test_admin_reload_with_workers_is_checked_by_the_supervisor_then_rolled(
    serve: Callable[..., ServerProcess], tmp_path: Path, iris_path: Path, iris_int_path: Path
) -> None:
    """Refused (409, every worker untouched) as one worker would refuse it; then, allowed and
    pinned, accepted (202) and rolled out to every worker."""
    model = tmp_path / "model.joblib"
    shutil.copyfile(iris_path, model)
    key = tmp_path / "key"
    key.write_text("workers-test-key")
    server = serve(str(model), "--workers", "2", "--api-key-file", str(key), *QUIET)
    auth = {"Authorization": "Bearer workers-test-key"}
    shutil.copyfile(iris_int_path, model)  # string labels -> integer labels: a schema change
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
        refused = client.post("/admin/reload")
        assert refused.status_code == 409, refused.text
        assert "allow_schema_change" in refused.json()["detail"]
        assert refused.json()["serving_sha256"] == sha256(iris_path)
        wrong_pin = client.post("/admin/reload", json={"sha256": "0" * 64})
        assert wrong_pin.status_code == 409 and "SHA-256" in wrong_pin.json()["detail"]
        assert served_hashes(server.url, headers=auth) == {sha256(iris_path)}
        wanted = {"sha256": sha256(iris_int_path), "allow_schema_change": True}
        accepted = client.post("/admin/reload", json=wanted)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["sha256"] == sha256(iris_int_path)
        deadline = time.monotonic() + 60
        while served_hashes(server.url, 10, headers=auth) != {sha256(iris_int_path)}:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        predicted = client.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
        assert predicted.json()["predictions"] == [0]
        with ThreadPoolExecutor(3) as pool:  # requests at once: each gets the one verdict
            answers = list(pool.map(lambda _: client.post("/admin/reload"), range(3)))
        assert [a.status_code for a in answers] == [202] * 3, [a.text for a in answers]
        assert {a.json()["sha256"] for a in answers} == {sha256(iris_int_path)}


def test_metadata_states_a_roll_that_waits_for_a_worker(
    tmp_path: Path, iris_path: Path, iris_int_path: Path
) -> None:
    """A roll whose new workers cannot start yet (the TLS key is missing) leaves the old workers
    serving the old model, and ``/metadata`` says which model is rolling in; once the key is
    back the roll completes."""
    ca = Authority(tmp_path, "test-ca")
    cert, key = ca.issue("server", server=True)
    model = tmp_path / "model.joblib"
    shutil.copyfile(iris_path, model)
    old, new = sha256(iris_path), sha256(iris_int_path)
    with https_workers(cert, key, ca.pem, str(model), "--allow-schema-change") as server:
        process, url = server.process, server.url
        verify = _context(ca.pem)
        shutil.move(key, tmp_path / "kept.key")
        shutil.copyfile(iris_int_path, model)
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while "rollout" not in (status := httpx.get(f"{url}/metadata", verify=verify).json()):
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        assert status["rollout"] == {
            "from_sha256": old,
            "to_sha256": new,
            "replaced": 0,
            "workers": 2,
        }
        assert served_hashes(url, 10, verify=verify) == {old}  # the old workers keep serving
        shutil.move(tmp_path / "kept.key", key)
        deadline = time.monotonic() + 60
        while "rollout" in (status := httpx.get(f"{url}/metadata", verify=verify).json()):
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        assert served_hashes(url, 10, verify=verify) == {new}


def test_workers_share_the_model_memory(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """Forked from the supervisor that loaded it, 3 workers share one copy of a ~30 MB forest:
    their proportional set sizes (a page shared by k processes counts 1/k) add up to far less
    than their resident sizes (which count each shared page in full). Each worker loading its
    own copy, as spawned workers did, makes the two nearly equal."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20_000, 10)), rng.integers(0, 2, size=20_000)
    forest = RandomForestClassifier(n_estimators=4, random_state=0).fit(X, y)
    forest.estimators_ = [copy.deepcopy(forest.estimators_[i % 4]) for i in range(60)]
    forest.set_params(n_estimators=60)
    path = tmp_path / "forest.joblib"
    joblib.dump(forest, path)
    assert path.stat().st_size > 20 * 2**20
    server = serve(str(path), "--workers", "3", *QUIET)
    wait_for_workers(server.process.pid, 3)
    for _ in range(30):  # fresh connections: every worker predicts, touching the whole forest
        answer = httpx.post(f"{server.url}/predict", json={"features": X[:20].tolist()})
        assert answer.status_code == 200
    memory = pss_tree(server.process.pid)
    assert memory["processes"] == 4, memory
    assert memory["pss_mib"] < 0.6 * memory["rss_mib"], memory
