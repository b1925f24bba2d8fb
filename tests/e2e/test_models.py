"""Several models in one real ``restpredict serve``: every protocol, tritonclient, the
repository API (index, load, unload, also under load), 404 shapes and duplicate names."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from restpredict.model.loading import LoadedModel, load_model
from tests.support.models import frame_data
from tests.support.servers import ServerProcess, free_port, running_server, spawn, wait_ready

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]])


@pytest.fixture(scope="module")
def folder(
    tmp_path_factory: pytest.TempPathFactory,
    iris_path: Path,
    regressor_path: Path,
    frame_path: Path,
) -> Path:
    """A classifier pipeline, a regressor and a DataFrame pipeline in one folder."""
    folder = tmp_path_factory.mktemp("repository")
    for path in (iris_path, regressor_path, frame_path):
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def url(folder: Path) -> Iterator[str]:
    with running_server("--model-dir", str(folder), "--default-model", "iris") as url:
        yield url


@pytest.fixture(scope="module")
def own(folder: Path) -> dict[str, LoadedModel]:
    """Each model loaded on its own: what the server's answers must equal."""
    return {p.stem: load_model(p) for p in sorted(folder.iterdir())}


@pytest.fixture
def tc(url: str) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    yield client
    client.close()


def test_every_protocol_answers_with_each_models_own_predictions(
    url: str, own: dict[str, LoadedModel]
) -> None:
    iris = own["iris"].estimator.predict(ROWS).tolist()
    regressor = own["regressor"].estimator.predict(ROWS[:, :3]).tolist()
    frame, _ = frame_data(6)
    records = frame.to_dict(orient="records")
    expected_frame = own["frame"].estimator.predict(frame).tolist()
    with httpx.Client(base_url=url) as http:
        rows = ROWS.tolist()
        assert http.post("/models/iris/predict", json={"features": rows}).json() == {
            "predictions": iris
        }
        assert http.post("/predict", json={"features": rows}).json()["predictions"] == iris
        assert http.post("/invocations", json={"instances": rows}).json()["predictions"] == iris
        small = ROWS[:, :3].tolist()
        v1 = http.post("/v1/models/regressor:predict", json={"instances": small}).json()
        assert v1["predictions"] == regressor
        answer = http.post("/models/frame/predict", json={"instances": records}).json()
        assert answer["predictions"] == expected_frame
        v1 = http.post("/v1/models/frame:predict", json={"instances": records}).json()
        assert v1["predictions"] == expected_frame
        assert http.get("/v1/models").json() == {"models": ["frame", "iris", "regressor"]}
        assert http.get("/v1/models/regressor").json() == {"name": "regressor", "ready": True}
        assert http.get("/models/frame/metadata").json()["feature_names"] == [
            "size",
            "color",
            "weight",
        ]


def test_tritonclient_infers_each_model(
    tc: triton.InferenceServerClient, own: dict[str, LoadedModel]
) -> None:
    for name in ("iris", "regressor", "frame"):
        assert tc.is_model_ready(name)
    assert not tc.is_model_ready("ghost")
    tensor = triton.InferInput("input-0", [3, 3], "FP64")
    tensor.set_data_from_numpy(ROWS[:, :3])
    result = tc.infer("regressor", [tensor])
    expected = own["regressor"].estimator.predict(ROWS[:, :3])
    np.testing.assert_array_equal(result.as_numpy("predict"), expected)
    frame, _ = frame_data(4)
    columns = []
    for column in frame.columns:
        values = frame[column].to_numpy()
        kind = "BYTES" if values.dtype == object else "FP64"
        tensor = triton.InferInput(column, [len(values)], kind)
        tensor.set_data_from_numpy(values.astype(object if kind == "BYTES" else np.float64))
        columns.append(tensor)
    result = tc.infer("frame", columns, parameters={"content_type": "pd"})
    got = [v.decode() for v in result.as_numpy("predict")]
    assert got == own["frame"].estimator.predict(frame).tolist()
    assert tc.get_model_metadata("iris")["inputs"][0]["shape"] == [-1, 4]


def test_unknown_models_are_404_in_each_protocols_shape(url: str) -> None:
    with httpx.Client(base_url=url) as http:
        core = http.post("/models/ghost/predict", json={"features": ROWS.tolist()})
        assert core.status_code == 404
        assert core.headers["content-type"] == "application/problem+json"
        assert "'frame', 'iris', 'regressor'" in core.json()["detail"]
        v1 = http.post("/v1/models/ghost:predict", json={"instances": ROWS.tolist()})
        assert (v1.status_code, set(v1.json())) == (404, {"error"})
        v2 = http.get("/v2/models/iris/versions/9")
        assert (v2.status_code, set(v2.json())) == (404, {"error"})
        assert "no version '9'" in v2.json()["error"]


def test_tritonclient_lists_unloads_and_loads(tc: triton.InferenceServerClient, url: str) -> None:
    index = tc.get_model_repository_index()
    assert sorted((m["name"], m["state"]) for m in index) == [
        ("frame", "READY"),
        ("iris", "READY"),
        ("regressor", "READY"),
    ]
    tc.unload_model("regressor")
    assert not tc.is_model_ready("regressor")
    listed = {m["name"]: m for m in tc.get_model_repository_index()}
    assert (listed["regressor"]["state"], listed["regressor"]["reason"]) == (
        "UNAVAILABLE",
        "unloaded",
    )
    with pytest.raises(InferenceServerException, match="not served here"):
        tensor = triton.InferInput("input-0", [3, 3], "FP64")
        tensor.set_data_from_numpy(ROWS[:, :3])
        tc.infer("regressor", [tensor])
    tc.load_model("regressor")
    assert tc.is_model_ready("regressor")
    with pytest.raises(InferenceServerException, match="configured: frame, iris, regressor"):
        tc.load_model("ghost")
    with pytest.raises(InferenceServerException, match="not supported"):
        tc.load_model("iris", config='{"backend": "python"}')


def test_unload_and_load_under_load_fail_no_request_on_the_other_models(
    url: str, tc: triton.InferenceServerClient, own: dict[str, LoadedModel]
) -> None:
    expected = own["regressor"].estimator.predict(ROWS[:, :3]).tolist()
    stop = threading.Event()
    failures: list[str] = []
    answered = [0]

    def hammer() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                answer = http.post(
                    "/models/regressor/predict", json={"features": ROWS[:, :3].tolist()}
                )
                if answer.status_code != 200 or answer.json()["predictions"] != expected:
                    failures.append(f"{answer.status_code} {answer.text}")
                answered[0] += 1

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        _until(lambda: answered[0] >= 10)
        for _ in range(3):
            tc.unload_model("iris")
            tc.load_model("iris")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert answered[0] > 0
    assert tc.is_model_ready("iris")


def test_an_unload_waits_for_the_requests_in_flight(
    url: str, tc: triton.InferenceServerClient
) -> None:
    """Requests on the model being unloaded succeed or get 404, never a 5xx or a reset."""
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                statuses.append(
                    http.post("/models/iris/predict", json={"features": ROWS.tolist()}).status_code
                )

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        _until(lambda: len(statuses) >= 10)
        tc.unload_model("iris")
        tc.load_model("iris")
        answered = len(statuses)
        _until(lambda: len(statuses) >= answered + 10)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert set(statuses) <= {200, 404}
    assert statuses[:10] == [200] * 10
    assert statuses[-1] == 200


def _until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_several_files_on_the_command_line(iris_path: Path, regressor_path: Path) -> None:
    with running_server(str(iris_path), str(regressor_path)) as url, httpx.Client() as http:
        models = http.get(f"{url}/v1/models").json()["models"]
        assert models == ["iris", "regressor"]
        refused = http.post(f"{url}/predict", json={"features": ROWS.tolist()})
        assert refused.status_code == 404
        assert "name one in the path" in refused.json()["detail"]
        off = http.post(f"{url}/v2/repository/index")
        assert off.status_code == 404  # the repository API is off unless asked for


def test_duplicate_names_exit_with_one_line(tmp_path: Path, iris_path: Path) -> None:
    (tmp_path / "b").mkdir()
    copy = shutil.copy(iris_path, tmp_path / "b" / "iris.joblib")
    done = subprocess.run(
        [sys.executable, "-m", "restpredict", "serve", str(iris_path), str(copy), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(iris_path) in lines[0] and str(copy) in lines[0]
    assert "Traceback" not in done.stderr


def test_the_repository_api_needs_the_api_key(
    serve: Callable[..., ServerProcess], folder: Path, tmp_path: Path
) -> None:
    key = tmp_path / "key"
    key.write_text("s3cret-token\n")
    server = serve("--model-dir", str(folder), "--api-key-file", str(key))
    with httpx.Client(base_url=server.url) as http:
        assert http.post("/v2/repository/index").status_code == 401
        assert http.post("/v2/repository/models/iris/unload").status_code == 401
        keyed = {"Authorization": "Bearer s3cret-token"}
        assert http.post("/v2/repository/index", headers=keyed).status_code == 200


def test_several_workers_load_and_unload_in_every_worker_under_load(
    serve: Callable[..., ServerProcess], folder: Path, own: dict[str, LoadedModel]
) -> None:
    """The supervisor loads and unloads, every worker follows before the answer; the other
    models answer every request meanwhile."""
    server = serve("--model-dir", str(folder), "--workers", "2", "--log-level", "warning")
    iris = own["iris"].estimator.predict(ROWS).tolist()
    regressor = own["regressor"].estimator.predict(ROWS[:, :3]).tolist()
    stop = threading.Event()
    failures: list[str] = []
    answered = [0]

    def hammer() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            while not stop.is_set():
                answer = http.post(
                    "/models/regressor/predict", json={"features": ROWS[:, :3].tolist()}
                )
                if answer.status_code != 200 or answer.json()["predictions"] != regressor:
                    failures.append(f"{answer.status_code} {answer.text}")
                answered[0] += 1

    tc = triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=300)
    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        _until(lambda: answered[0] >= 10)
        for _ in range(2):
            tc.unload_model("iris")
            assert _fresh_statuses(server.url, "iris") == {404}
            assert _fresh_indexes(server.url) == [
                ("frame", "READY", ""),
                ("iris", "UNAVAILABLE", "unloaded"),
                ("regressor", "READY", ""),
            ]
            tc.load_model("iris")
            assert _fresh_statuses(server.url, "iris") == {200}
            assert _fresh_indexes(server.url) == [
                ("frame", "READY", ""),
                ("iris", "READY", ""),
                ("regressor", "READY", ""),
            ]
        with pytest.raises(InferenceServerException, match="configured: frame, iris, regressor"):
            tc.load_model("ghost")
        with pytest.raises(InferenceServerException, match="'ghost' is not loaded"):
            tc.unload_model("ghost")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        tc.close()
    assert failures == []
    with httpx.Client(base_url=server.url) as http:
        answer = http.post("/models/iris/predict", json={"features": ROWS.tolist()})
        assert answer.json()["predictions"] == iris


def _fresh_statuses(url: str, name: str, n: int = 30) -> set[int]:
    """The statuses of ``n`` predictions, each on a new connection (spread over the workers)."""
    body = {"features": ROWS.tolist()}
    return {httpx.post(f"{url}/models/{name}/predict", json=body).status_code for _ in range(n)}


def _fresh_indexes(url: str, n: int = 20) -> list[tuple[str, str, str]]:
    """The repository index, the same on ``n`` new connections (or the assertion says not)."""
    seen = set()
    for _ in range(n):
        entries = httpx.post(f"{url}/v2/repository/index").json()
        seen.add(tuple(sorted((e["name"], e["state"], e["reason"]) for e in entries)))
    assert len(seen) == 1, seen
    return list(seen.pop())


def test_a_canary_split_in_a_real_server(
    tmp_path: Path, iris_path: Path, iris_int_path: Path
) -> None:
    config = tmp_path / "restpredict.yaml"
    config.write_text(
        f"models:\n"
        f"  - {{source: {iris_path}, name: flowers, version: '1'}}\n"
        f"  - {{source: {iris_int_path}, name: flowers, version: '2'}}\n"
        "traffic: {flowers: {'1': 80, '2': 20}}\n"
    )
    port = free_port()
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "restpredict", "serve", "--config", str(config)]
    command += ["--log-format", "json", "--port", str(port)]
    server = spawn(command, f"http://127.0.0.1:{port}", log=log)
    try:
        wait_ready(server)
        versions = []
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for _ in range(1000):
                answer = http.post("/predict", json={"features": ROWS[0].tolist()})
                versions.append(answer.headers["x-model-version"])
            keyed = {
                http.post(
                    "/predict",
                    json={"features": ROWS[0].tolist()},
                    headers={"X-Routing-Key": "k-7"},
                ).headers["x-model-version"]
                for _ in range(20)
            }
    finally:
        server.stop()
    assert 150 <= versions.count("2") <= 250  # binomial(1000, 0.2): 200 +- 4 sd
    assert len(keyed) == 1
    assert '"model_version":"2"' in log.read_text().replace(" ", "")


def test_a_shadow_in_a_real_server_counts_disagreement_exactly(
    serve: Callable[..., ServerProcess], tmp_path: Path, iris_path: Path, iris_int_path: Path
) -> None:
    config = tmp_path / "restpredict.yaml"
    config.write_text(
        f"models:\n"
        f"  - {{source: {iris_path}, name: flowers, version: '1', default: true}}\n"
        f"  - {{source: {iris_int_path}, name: flowers, version: '2'}}\n"
        "shadow: {flowers: '2'}\n"
        "access_log: false\n"
    )
    server = serve("--config", str(config))
    expected = load_model(iris_path).estimator.predict(ROWS).tolist()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for sent in range(1, 31):
            answer = http.post("/models/flowers/predict", json={"features": ROWS.tolist()})
            assert answer.json()["predictions"] == expected  # the primary's, never the shadow's
            _until(lambda sent=sent: _disagreements(http) == sent)
        assert "restpredict_shadow_comparisons_total" in http.get("/metrics").text
        assert 'outcome="agree"' not in http.get("/metrics").text


def _disagreements(http: httpx.Client) -> float:
    prefix = 'restpredict_shadow_comparisons_total{model="flowers",outcome="disagree",'
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_reload_applies_the_configurations_traffic_and_shadow_in_every_worker(
    serve: Callable[..., ServerProcess],
    tmp_path: Path,
    iris_path: Path,
    iris_int_path: Path,
    workers: str,
) -> None:
    key = tmp_path / "key"
    key.write_text("s3cret-token\n")
    keyed = {"Authorization": "Bearer s3cret-token"}
    config = tmp_path / "restpredict.yaml"
    models = (
        f"models:\n"
        f"  - {{source: {iris_path}, name: flowers, version: '1'}}\n"
        f"  - {{source: {iris_int_path}, name: flowers, version: '2'}}\n"
    )
    config.write_text(models + "traffic: {flowers: {'1': 100, '2': 0}}\n")
    server = serve(
        "--config",
        str(config),
        "--api-key-file",
        str(key),
        "--workers",
        workers,
        "--log-level",
        "warning",
    )
    assert _fresh_versions(server.url, keyed) == {"1"}
    config.write_text(models + "traffic: {flowers: {'1': 100, '2': 0, '3': 5}}\n")
    refused = httpx.post(f"{server.url}/admin/reload", headers=keyed, timeout=300)
    assert refused.status_code == 409
    assert "flowers has no version 3" in refused.json()["detail"]
    assert _fresh_versions(server.url, keyed) == {"1"}
    config.write_text(models + "traffic: {flowers: {'1': 0, '2': 100}}\nshadow: {flowers: '1'}\n")
    answer = httpx.post(f"{server.url}/admin/reload", headers=keyed, timeout=300)
    assert answer.status_code == 200, answer.text
    assert _fresh_versions(server.url, keyed) == {"2"}  # every worker, at once
    with httpx.Client(base_url=server.url, headers=keyed, timeout=30) as http:
        _until(lambda: _disagreements(http) >= 1)  # version 1 shadows version 2 (other labels)


def _fresh_versions(url: str, headers: dict[str, str], n: int = 30) -> set[str]:
    """The versions that answered ``n`` predictions, each on a new connection."""
    body = {"features": ROWS.tolist()}
    answers = [httpx.post(f"{url}/predict", json=body, headers=headers) for _ in range(n)]
    assert {a.status_code for a in answers} == {200}, answers[0].text
    return {a.headers["x-model-version"] for a in answers}
