"""Real processes under load: SIGTERM drains, killed workers come back, SIGHUP reloads.

Each test drives ``restpredict serve`` the way an orchestrator does (signals, probes)
while client threads send predictions continuously, and counts every request that
was accepted but did not get its answer: the target is zero.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import joblib
import pytest

from tests.routes.test_core import problem
from tests.support.inprocess import FailingModel
from tests.support.loadgen import Load
from tests.support.models import replace, sha256
from tests.support.servers import ServerProcess, free_port, wait_ready

from .servers import workers_of

QUIET = ("--log-level", "warning")  # the fixture reads output only at the end: keep it small
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_under_load_drains_and_fails_no_accepted_request(
    serve: Callable[..., ServerProcess], workers: str
) -> None:
    server = serve("--workers", workers, "--drain-seconds", "1", "--shutdown-timeout", "10", *QUIET)
    with Load(server.url, threads=4) as load:
        load.wait_for(ok=100)
        server.process.send_signal(signal.SIGTERM)
        # At once: readiness fails so the load balancer stops sending; predictions still work.
        problem(httpx.get(f"{server.url}/health/ready"), 503, "not_ready")
        assert httpx.post(f"{server.url}/predict", json=load.body).status_code == 200
        served_before = load.ok
        code = server.process.wait(timeout=1 + 10 + 10)  # drain + shutdown timeout + slack
        load.wait_for(ok=served_before, refused=1)  # after the drain: connections refused
    assert code == 0
    assert load.failures == [], load.summary()
    assert load.ok > served_before > 100


def test_sigterm_while_workers_start_stops_at_once(tmp_path: Path) -> None:
    """The supervisor health-checks a worker that is still importing (it can take a minute to
    answer); a SIGTERM then must not wait for that check, nor bring up replacements."""
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "restpredict", "serve", "--workers", "2", *QUIET]
    with log.open("w") as out:
        process = subprocess.Popen([*command, "--port", str(free_port())], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while len(workers_of(process.pid)) < 2:  # both spawned: the supervisor's loop is running
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.01)
        time.sleep(0.8)  # past the loop's first 0.5 s wait: a health check is under way
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)  # the health check it used to wait out takes 60 s
        assert code == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_killed_worker_is_replaced(serve: Callable[..., ServerProcess]) -> None:
    server = serve("--workers", "2")  # info level: the supervisor logs each worker it confirms
    deadline = time.monotonic() + 120
    # Kill only workers the supervisor has confirmed ready ("worker [PID] serves ..."): a worker
    # killed before its server started did not start, and with none started the server rightly
    # stops (exit 3). One killed after it reported itself started counts as started, even if the
    # supervisor reads the report only later (tests/server/test_workers.py).
    while len(before := workers_of(server.process.pid)) < 2 or not before <= {
        int(pid) for pid in re.findall(r"worker \[(\d+)\] serves", server.logged())
    }:
        assert time.monotonic() < deadline, server.logged()
        time.sleep(0.2)
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    while len((after := workers_of(server.process.pid)) - before) < 2:
        assert time.monotonic() < deadline, f"workers not replaced: {before} -> {after}"
        time.sleep(0.2)
    wait_ready(server, timeout=120)
    response = httpx.post(f"{server.url}/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
    assert response.status_code == 200
    assert server.process.poll() is None


def test_sighup_swaps_the_model_under_load_and_refuses_a_bad_one(
    serve: Callable[..., ServerProcess], tmp_path: Path, iris_path: Path, iris_int_path: Path
) -> None:
    model = tmp_path / "model.joblib"
    shutil.copyfile(iris_path, model)
    server = serve(str(model), "--allow-schema-change", *QUIET)  # string -> integer labels
    with Load(server.url, threads=4) as load:
        load.wait_for(ok=50)
        assert set(load.models) == {sha256(iris_path)}
        replace(model, iris_int_path)
        server.process.send_signal(signal.SIGHUP)
        load.wait_for_model(sha256(iris_int_path))
        replace(model, b"not a pickle")
        server.process.send_signal(signal.SIGHUP)
        swapped = len(load.models)
        load.wait_for(ok=load.ok + 200)
    assert load.failures == [], load.summary()
    assert set(load.models[swapped:]) == {sha256(iris_int_path)}  # the bad file never served
    assert server.process.poll() is None
    log = server.output()
    assert "reload refused, still serving sha256 " + sha256(iris_int_path) in log
    assert "not a loadable joblib/pickle file" in log


def test_sighup_rolls_several_workers_under_load(
    serve: Callable[..., ServerProcess], tmp_path: Path, iris_path: Path, iris_int_path: Path
) -> None:
    """The supervisor prepares the new model, then forks workers of it and retires the old ones
    (each closing its keep-alive connections with its last answers): no request fails."""
    model = tmp_path / "model.joblib"
    shutil.copyfile(iris_path, model)
    server = serve(str(model), "--workers", "2", "--allow-schema-change", *QUIET)
    with Load(server.url, threads=4) as load:
        load.wait_for(ok=50)
        replace(model, iris_int_path)
        server.process.send_signal(signal.SIGHUP)
        new = sha256(iris_int_path)
        deadline = time.monotonic() + 60
        while new not in served_by_all(server) or len(workers_of(server.process.pid)) > 2:
            assert time.monotonic() < deadline, load.summary()  # rolled, old workers gone
            time.sleep(0.05)
        tail = len(load.models)
        replace(model, b"not a pickle")
        server.process.send_signal(signal.SIGHUP)
        load.wait_for(ok=load.ok + 300)
    assert load.failures == [], load.summary()
    assert set(load.models[tail:]) == {new}
    assert "reload refused, still serving sha256 " + new in server.output()


def served_by_all(server: ServerProcess) -> set[str]:
    """The model every worker serves once the roll is over (none while it is under way)."""
    status = httpx.get(f"{server.url}/metadata").json()
    return set() if "rollout" in status else {status["sha256"]}


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "restpredict", "serve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"garbage", "not a loadable joblib/pickle file", id="corrupt"),
        pytest.param(None, "the warm-up prediction failed", id="warm-up-fails"),
    ],
)
def test_a_model_that_cannot_serve_exits_3_without_binding(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    model = tmp_path / "model.joblib"
    if content is None:
        joblib.dump(FailingModel().fit(None, None), model)
    else:
        model.write_bytes(content)
    port = free_port()
    result = run_serve(str(model), "--port", str(port))
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert "Traceback" not in result.stderr + result.stdout
    assert "Uvicorn running" not in result.stderr + result.stdout


def test_a_pin_mismatch_exits_3(iris_path: Path) -> None:
    result = run_serve(str(iris_path), "--sha256", "0" * 64, "--port", "9")
    assert result.returncode == 3
    assert "SHA-256" in result.stderr and "refusing to unpickle" in result.stderr
