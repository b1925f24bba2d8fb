"""Overload and slow clients: 503 + Retry-After, 504, 408 — through a real uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from restpredict.app import create_app
from restpredict.asgi.admission import Admission
from restpredict.asgi.responses import problem_response
from restpredict.middleware.limits import RequestLimits
from restpredict.settings import Settings
from tests.routes.test_core import problem
from tests.support.inprocess import GateModel, running, wrap

BODY = {"features": [1, 2]}


def test_saturation_is_a_json_503_with_retry_after_and_probes_bypass_it() -> None:
    model = GateModel()
    # Without batching each request is its own predict() call, so both can be seen inside it.
    settings = Settings(max_concurrency=2, retry_after=7, batching=False)
    app = create_app(settings, wrap(model))
    with running(app) as url, ThreadPoolExecutor(2) as pool:
        busy = [pool.submit(httpx.post, f"{url}/predict", json=BODY, timeout=60) for _ in "ab"]
        model.wait_inside(2)  # both slots are taken by computing requests
        refused = httpx.post(f"{url}/predict", json=BODY)
        body = problem(refused, 503, "overloaded")
        assert refused.headers["retry-after"] == "7"
        assert "limit is 2" in body["detail"]
        assert httpx.get(f"{url}/health/ready").status_code == 200
        assert httpx.get(f"{url}/health/live").status_code == 200
        model.gate.set()
        assert [future.result().status_code for future in busy] == [200, 200]
        assert httpx.post(f"{url}/predict", json=BODY).status_code == 200  # slots came back


def test_a_slow_prediction_is_a_504_and_keeps_its_slot_until_the_model_returns() -> None:
    model = GateModel()
    app = create_app(Settings(max_concurrency=1, prediction_timeout=0.3), wrap(model))
    with running(app) as url:
        late = httpx.post(f"{url}/predict", json=BODY, timeout=60)
        problem(late, 504, "prediction_timeout")
        assert late.headers["x-model-sha256"] == "0" * 64
        # The model call cannot be interrupted: until it returns, it still holds the slot.
        problem(httpx.post(f"{url}/predict", json=BODY), 503, "overloaded")
        model.gate.set()
        statuses = []
        for _ in range(100):
            statuses.append(httpx.post(f"{url}/predict", json=BODY).status_code)
            if statuses[-1] == 200:
                break
            time.sleep(0.05)
        assert statuses[-1] == 200, statuses


def _exchange(url: str, request: bytes, *, trickle: bytes = b"", wait: float = 30) -> bytes:
    """Send ``request``, then ``trickle`` one byte at a time; return all bytes until EOF."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(request)
        received = b""
        sock.settimeout(0.1)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if trickle:
                try:
                    sock.sendall(trickle[:1])
                except OSError:
                    trickle = b""
                trickle = trickle[1:]
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # reset: the server closed while bytes were still arriving
                return received
            if not chunk:
                return received
            received += chunk
        raise AssertionError(f"connection still open after {wait} s; got {received!r}")


def test_a_body_that_trickles_in_gets_408_and_the_connection_is_closed() -> None:
    app = create_app(Settings(body_timeout=0.5), wrap(GateModel()))
    with running(app) as url:
        head = (
            b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: 400\r\n\r\n"
        )
        answer = _exchange(url, head + b'{"features": ', trickle=b" " * 300)
        status, _, rest = answer.partition(b"\r\n")
        assert status == b"HTTP/1.1 408 Request Timeout"
        assert b"connection: close" in rest.lower()
        assert b'"code":"request_timeout"' in rest
        assert httpx.get(f"{url}/health/live").status_code == 200


def test_a_body_that_arrives_in_time_is_served_normally() -> None:
    model = GateModel()
    model.gate.set()
    with running(create_app(Settings(body_timeout=5), wrap(model))) as url:
        response = httpx.post(f"{url}/predict", json=BODY)
        assert response.status_code == 200
        assert response.headers.get("connection") != "close"


def test_a_request_without_a_body_gets_its_504_too() -> None:
    """A GET never reads a body: its prediction deadline runs from its arrival."""
    release = threading.Event()

    async def stuck(request: Request) -> Response:
        await run_in_threadpool(release.wait, 30)
        return Response("too late")

    limits = RequestLimits(
        Starlette(routes=[Route("/metadata", stuck)]),
        admission=Admission(max_concurrency=4, retry_after=1, exempt_paths=("/health/live",)),
        body_timeout=30,
        prediction_timeout=0.3,
        reload_timeout=30,
        problem=problem_response,
    )
    try:
        with running(cast(Starlette, limits)) as url:
            started = time.monotonic()
            late = httpx.get(f"{url}/metadata", timeout=10)
            assert time.monotonic() - started < 5  # the 0.3 s deadline, not the 30 s body one
            problem(late, 504, "prediction_timeout")
            release.set()  # before the server stops: it waits for the request it gave up on
    finally:
        release.set()


def test_admin_operations_are_bounded_by_the_reload_timeout() -> None:
    """A reload or repository load gets ``reload_timeout``'s 504, not the prediction's."""
    release = threading.Event()

    async def stuck(request: Request) -> Response:
        await run_in_threadpool(release.wait, 30)
        return Response("too late")

    limits = RequestLimits(
        Starlette(
            routes=[
                Route("/admin/reload", stuck, methods=["POST"]),
                Route("/v2/repository/models/{name}/load", stuck, methods=["POST"]),
            ]
        ),
        admission=Admission(max_concurrency=4, retry_after=1, exempt_paths=("/health/live",)),
        body_timeout=30,
        prediction_timeout=30,
        reload_timeout=0.3,
        problem=problem_response,
    )
    try:
        with running(cast(Starlette, limits)) as url:
            for path in ("/admin/reload", "/v2/repository/models/iris/load"):
                body = problem(httpx.post(f"{url}{path}", timeout=10), 504, "reload_timeout")
                assert body["detail"].startswith("no answer within the reload timeout of 0.3 s")
            release.set()  # before the server stops: it waits for the requests it gave up on
    finally:
        release.set()
