"""The Batcher in-process with a slow fake model (real server processes: ``tests/e2e``).

The fake model (``tests.support.estimators.BatchEcho``) answers ``1000 * rows-in-its-call +
row id``, so each answer tells whether it was batched and with how many rows. Queries are
queued behind a slow "blocker" batch so that what gets stacked together does not depend on
timing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from starlette.requests import ClientDisconnect

from restpredict.asgi.batching import (
    EXPECT_WINDOW_S,
    FOLLOW_FACTOR,
    ON_DISCONNECT,
    Batcher,
    CallCost,
    batch_key,
    make_batcher,
    returning_client,
)
from restpredict.codecs.payload import Query
from restpredict.errors import ConfigError, InputError, NotReadyError
from restpredict.model.loading import LoadedModel, Prediction, from_estimator
from restpredict.settings import Settings, load_settings
from tests.support.estimators import BatchEcho

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]


def echo_model(delay: float = 0.0) -> LoadedModel:
    return from_estimator(
        BatchEcho(delay).fit(), name="echo", sha256="0" * 64, source="test", sklearn_trained=None
    )


def query(*ids: float, proba: bool = False, labels: bool = True) -> Query:
    return Query(rows=np.array([[i, 0.0] for i in ids]), labels=labels, proba=proba)


def calls(model: LoadedModel) -> list[tuple[str, int]]:
    return list(model.estimator.calls_)


def labels(prediction: Prediction) -> list[float]:
    assert prediction.labels is not None
    values: list[float] = prediction.labels.tolist()
    return values


def run(main: Callable[[Batcher], Coroutine[Any, Any, T]], **limits: Any) -> T:
    """Run ``main(batcher)`` with a started batcher (huge deadline unless given)."""

    async def wrapper() -> T:
        options = {"max_batch_size": 32, "max_wait_s": 3600.0, "max_rows": 10_000, **limits}
        async with Batcher(**options) as batcher:
            return await main(batcher)

    return asyncio.run(wrapper())


async def start_blocker(batcher: Batcher, blocker: LoadedModel) -> asyncio.Task[Prediction]:
    """A one-row batch on a slow model, already running in the worker thread when this returns."""
    task = asyncio.ensure_future(batcher.predict({}, blocker, query(999)))
    for _ in range(5000):
        if blocker.estimator.calls_:
            return task
        await asyncio.sleep(0.001)
    raise AssertionError("the blocker batch never started")


async def behind_blocker(batcher: Batcher, *jobs: tuple[LoadedModel, Query]) -> list[Any]:
    """Queue ``jobs`` while a slow batch runs, so they are gathered together after it."""
    blocker = await start_blocker(batcher, echo_model(delay=0.3))
    results = await asyncio.gather(
        *(batcher.predict({}, model, q) for model, q in jobs), return_exceptions=True
    )
    await blocker
    return results


def test_queries_queued_behind_a_batch_share_one_call_and_keep_their_order() -> None:
    model = echo_model()
    results = run(lambda b: behind_blocker(b, *((model, query(i)) for i in range(10))))
    assert [labels(r) for r in results] == [[10_000.0 + i] for i in range(10)]
    assert calls(model) == [("predict", 10)]


def test_multi_row_queries_are_split_back_in_order() -> None:
    model = echo_model()
    jobs = [(model, query(1, 2, 3)), (model, query(4)), (model, query(5, 6))]
    results = run(lambda b: behind_blocker(b, *jobs))
    assert [labels(r) for r in results] == [[6001, 6002, 6003], [6004], [6005, 6006]]


def test_labels_and_probabilities_are_never_stacked_together() -> None:
    model = echo_model()
    jobs = [
        (model, query(1)),
        (model, query(2, proba=True)),
        (model, query(3, proba=True, labels=False)),
        (model, query(4)),
        (model, query(5, proba=True)),
    ]
    results = run(lambda b: behind_blocker(b, *jobs))
    # labels-only (1, 4) together; labels+proba (2, 5) together; proba-only (3) alone.
    assert [labels(results[i]) for i in (0, 3)] == [[2001], [2004]]
    assert [labels(results[i]) for i in (1, 4)] == [[2002], [2005]]
    assert results[2].labels is None
    for i in (1, 2, 4):
        assert results[i].proba.tolist() == [[0.25, 0.75]]
    assert results[0].proba is None
    assert sorted(calls(model)) == [
        ("predict", 2),
        ("predict", 2),
        ("predict_proba", 1),
        ("predict_proba", 2),
    ]


def test_different_models_and_row_kinds_get_different_batches() -> None:
    one, other = echo_model(), echo_model()
    assert batch_key(one, query(1)) == batch_key(one, query(2, 3))
    assert batch_key(one, query(1)) != batch_key(other, query(1))  # e.g. after a hot reload
    mixed = Query(rows=np.array([[1, "a"]], dtype=object))
    assert batch_key(one, query(1)) != batch_key(one, mixed)
    wider = Query(rows=np.zeros((1, 3)))
    assert batch_key(one, query(1)) != batch_key(one, wider)
    results = run(lambda b: behind_blocker(b, (one, query(1)), (other, query(2)), (one, query(3))))
    assert [labels(r) for r in results] == [[2001], [1002], [2003]]


def test_a_bad_row_fails_alone() -> None:
    model = echo_model()
    jobs = [(model, query(i)) for i in (1, 2, -3, 4, 5)]
    results = run(lambda b: behind_blocker(b, *jobs))
    assert isinstance(results[2], InputError)
    assert results[2].code == "model_rejected_input"
    assert [labels(results[i]) for i in (0, 1, 3, 4)] == [[1001], [1002], [1004], [1005]]
    # The stacked call failed, then each query was predicted on its own.
    assert calls(model) == [("predict", 5)] + [("predict", 1)] * 5


def test_max_batch_size_and_max_rows_bound_a_batch() -> None:
    model = echo_model()
    results = run(
        lambda b: behind_blocker(b, *((model, query(i)) for i in range(7))), **{"max_batch_size": 3}
    )
    assert [labels(r)[0] // 1000 for r in results] == [3, 3, 3, 3, 3, 3, 1]
    model = echo_model()
    jobs = [(model, query(i, i)) for i in range(4)]
    results = run(lambda b: behind_blocker(b, *jobs), max_rows=5)
    assert calls(model) == [("predict", 4), ("predict", 4)]


def test_a_lone_query_does_not_wait_for_the_deadline() -> None:
    model = echo_model()

    async def main(batcher: Batcher) -> Prediction:
        # The deadline is an hour away: only "nothing else is arriving" can release it.
        return await asyncio.wait_for(batcher.predict({}, model, query(7)), timeout=10)

    assert labels(run(main)) == [1007]


def test_a_batch_waits_for_requests_still_arriving() -> None:
    model = echo_model()

    async def main(batcher: Batcher) -> list[Prediction]:
        late: dict[str, Any] = {}
        batcher.arriving_request(late)  # what the middleware does when a POST starts
        early = asyncio.ensure_future(batcher.predict({}, model, query(1)))
        await asyncio.sleep(0.2)
        assert not early.done(), "ran without waiting for the arriving request"
        second = await batcher.predict(late, model, query(2))
        return [await early, second]

    assert [labels(r) for r in run(main)] == [[2001], [2002]]
    assert calls(model) == [("predict", 2)]


def test_the_deadline_bounds_the_wait_for_an_arrival_that_never_comes() -> None:
    model = echo_model()

    async def main(batcher: Batcher) -> Prediction:
        batcher.arriving_request({})  # a request that never queues a query
        return await asyncio.wait_for(batcher.predict({}, model, query(1)), timeout=10)

    assert labels(run(main, max_wait_s=0.05)) == [1001]


def test_leaving_answers_the_running_query_and_fails_queued_ones_with_503() -> None:
    model = echo_model()

    async def main() -> tuple[Prediction | BaseException, ...]:
        async with Batcher(max_batch_size=8, max_wait_s=1.0, max_rows=100) as batcher:
            blocker = await start_blocker(batcher, echo_model(delay=0.3))
            queued = asyncio.ensure_future(batcher.predict({}, model, query(1)))
            await asyncio.sleep(0.01)
        return await asyncio.gather(blocker, queued, return_exceptions=True)

    running, queued = asyncio.run(main())
    assert isinstance(running, Prediction) and labels(running) == [1999]
    assert isinstance(queued, NotReadyError)
    assert calls(model) == []


def test_a_queued_query_whose_client_left_never_reaches_the_model() -> None:
    model = echo_model()

    async def main() -> tuple[tuple[Prediction | BaseException, ...], bool]:
        async with Batcher(max_batch_size=8, max_wait_s=1.0, max_rows=100) as batcher:
            blocker = await start_blocker(batcher, echo_model(delay=0.3))
            scopes: list[dict[str, Any]] = [{}, {}]
            left, stays = (
                asyncio.ensure_future(batcher.predict(scope, model, query(i)))
                for i, scope in enumerate(scopes)
            )
            await asyncio.sleep(0.01)
            scopes[0].pop(ON_DISCONNECT)()  # what the server calls when the client leaves
            results = await asyncio.gather(blocker, left, stays, return_exceptions=True)
            return results, ON_DISCONNECT in scopes[1]

    (running, left, stays), hook_kept = asyncio.run(main())
    assert isinstance(running, Prediction) and labels(running) == [1999]
    assert isinstance(left, ClientDisconnect)
    assert isinstance(stays, Prediction) and labels(stays) == [1001]
    assert calls(model) == [("predict", 1)]  # the one row that stayed
    assert not hook_kept  # an answered request leaves no hook behind


@pytest.mark.parametrize(
    ("settings", "on"),
    [
        pytest.param(Settings(), True, id="default-on"),
        pytest.param(Settings(batching=False), False, id="no-batching"),
        pytest.param(Settings(max_batch_size=1), False, id="max-batch-size-1"),
    ],
)
def test_batching_can_be_turned_off(settings: Settings, on: bool) -> None:
    assert (make_batcher(settings) is not None) is on


# --- Through a real server -----------------------------------------------------------------


def test_batching_settings_from_yaml_env_and_flags(tmp_path: Path) -> None:
    config = tmp_path / "restpredict.yaml"
    config.write_text("max_batch_size: 8\nmax_batch_wait_ms: 0.5\nbackend: onnx\n")
    env = {"RESTPREDICT_BATCHING": "false"}
    settings = load_settings(config, environ=env, max_batch_wait_ms=0.25)
    assert (settings.max_batch_size, settings.max_batch_wait_ms) == (8, 0.25)
    assert settings.batching is False and settings.backend == "onnx"
    config.write_text("max_batch_size: 0\n")
    with pytest.raises(ConfigError, match="line 1: max_batch_size"):
        load_settings(config)


# --- Where a batch runs, and who it waits for --------------------------------------------------


class ThreadEcho(BatchEcho):
    """BatchEcho that also notes the thread each call ran on."""

    def predict(self, X: Any) -> np.ndarray:
        self.threads_.append(threading.current_thread().name)
        return super().predict(X)

    def fit(self, X: Any = None, y: Any = None) -> ThreadEcho:
        super().fit(X, y)
        self.threads_: list[str] = []
        return self


def thread_model() -> LoadedModel:
    return from_estimator(
        ThreadEcho().fit(), name="echo", sha256="0" * 64, source="test", sklearn_trained=None
    )


def test_every_call_runs_in_the_worker_thread_never_on_the_loop() -> None:
    model = thread_model()

    async def main(batcher: Batcher) -> None:
        for i in range(3):
            assert labels(await batcher.predict({}, model, query(i))) == [1000 + i]

    run(main)
    assert model.estimator.threads_ and set(model.estimator.threads_) == {"restpredict-batch"}


def test_call_cost_scales_with_rows_beyond_the_usual_size() -> None:
    cost = CallCost()
    assert cost.estimate(1) == float("inf")
    for _ in range(20):
        cost.record(rows=10, seconds=0.001)
    assert cost.estimate(1) == pytest.approx(0.001)  # the fixed cost does not shrink
    assert cost.estimate(100) == pytest.approx(0.01)
    cost.record(rows=10, seconds=0.006)  # one slow call moves it a fifth of the way
    assert cost.estimate(10) == pytest.approx(0.002)


def test_a_batch_waits_for_connections_just_answered_but_not_for_their_own() -> None:
    model = echo_model()

    async def main(batcher: Batcher) -> list[Prediction]:
        # Calls measured at a minute keep answered connections expected that long (the
        # default 2 ms window would make the outcome depend on how fast this test runs).
        batcher.record(model, rows=1, seconds=60.0)
        assert batcher.expect_window_s == 60.0
        one, two = {"client": ("127.0.0.1", 1)}, {"client": ("127.0.0.1", 2)}
        batcher.answered(one["client"])
        batcher.answered(two["client"])
        # Connection 1 is back; 2 was answered a moment ago, so a batch waits for it.
        batcher.arriving_request(one)
        first = asyncio.ensure_future(batcher.predict(one, model, query(1)))
        await asyncio.sleep(0.001)
        assert not first.done(), "ran without waiting for the connection just answered"
        batcher.arriving_request(two)
        second = await batcher.predict(two, model, query(2))
        together = [await first, second]
        # Connection 2 comes back with a request that queues no query (a GET): not expected.
        batcher.arriving_request(two)
        batcher.arrived(two)
        # Alone on a kept-alive connection: it waits for nobody, not even its own answer.
        batcher.answered(one["client"])
        batcher.arriving_request(one)
        alone = await asyncio.wait_for(batcher.predict(one, model, query(3)), timeout=10)
        return [*together, alone]

    results = run(main, max_wait_s=3600.0)
    assert [labels(r) for r in results] == [[2001], [2002], [1003]]


def test_a_connection_that_does_not_come_back_is_waited_for_briefly() -> None:
    model = echo_model()

    async def main(batcher: Batcher) -> Prediction:
        batcher.answered(("127.0.0.1", 1))  # closed, say: it never sends again
        return await asyncio.wait_for(batcher.predict({}, model, query(1)), timeout=10)

    assert labels(run(main, max_wait_s=3600.0)) == [1001]


def test_a_group_queued_behind_a_batch_waits_for_the_group_that_batch_answers() -> None:
    slow, model = echo_model(delay=0.3), echo_model()

    async def main(batcher: Batcher) -> list[Prediction]:
        a, b = {"client": ("127.0.0.1", 1)}, {"client": ("127.0.0.1", 2)}
        first = asyncio.ensure_future(batcher.predict(a, slow, query(1)))
        while not slow.estimator.calls_:
            await asyncio.sleep(0.001)
        # b queues while a's call runs; its own wait must start only when the model is free.
        second = asyncio.ensure_future(batcher.predict(b, model, query(2)))
        await first  # a was noted as answered before this returned: the batch waits for it
        batcher.arriving_request(a)
        await asyncio.sleep(0.05)  # a's next body takes a while to arrive
        again = await batcher.predict(a, model, query(3))
        return [await second, again]

    # b queued 0.3 s ago, longer than the wait: counted from then, it would have run alone.
    results = run(main, max_wait_s=0.2)
    assert [labels(r) for r in results] == [[2002], [2003]]
    assert calls(model) == [("predict", 2)]


def test_the_wait_follows_a_slow_models_call_time_within_its_cap() -> None:
    model = echo_model()
    batcher = Batcher(max_batch_size=32, max_wait_s=0.002, max_rows=100)
    batcher.record(model, rows=32, seconds=0.0005)  # a fast model: the configured wait holds
    assert (batcher.wait_s, batcher.expect_window_s) == (0.002, EXPECT_WINDOW_S)
    for _ in range(30):
        batcher.record(model, rows=32, seconds=0.008)
    assert batcher.wait_s == pytest.approx(0.008, rel=0.01)  # a left-out request waits that
    assert batcher.expect_window_s == pytest.approx(0.008, rel=0.01)
    for _ in range(30):
        batcher.record(model, rows=32, seconds=5.0)
    assert batcher.wait_s == pytest.approx(0.002 * FOLLOW_FACTOR)
    never = Batcher(max_batch_size=32, max_wait_s=0.0, max_rows=100)
    never.record(model, rows=32, seconds=5.0)
    assert (never.wait_s, never.expect_window_s) == (0.0, 0.0)  # told never to wait: it doesn't


def test_after_a_slow_call_its_clients_are_waited_for_longer_than_max_wait() -> None:
    slow = echo_model(delay=0.3)

    async def main(batcher: Batcher) -> list[Prediction]:
        a, b = {"client": ("127.0.0.1", 1)}, {"client": ("127.0.0.1", 2)}
        batcher.arriving_request(a)
        first = asyncio.ensure_future(batcher.predict(a, slow, query(1)))
        while not slow.estimator.calls_:
            await asyncio.sleep(0.001)
        second = asyncio.ensure_future(batcher.predict(b, slow, query(2)))
        await first
        # a comes back three times max_wait after its answer, well within one call's time.
        await asyncio.sleep(0.15)
        batcher.arriving_request(a)
        again = await batcher.predict(a, slow, query(3))
        return [await second, again]

    results = run(main, max_wait_s=0.05)
    assert [labels(r) for r in results] == [[2002], [2003]]
    assert calls(slow) == [("predict", 1), ("predict", 2)]


@pytest.mark.parametrize(
    ("version", "connection", "returns"),
    [
        ("1.1", None, True),
        ("1.1", b"keep-alive", True),
        ("1.1", b"close", False),
        ("1.1", b"Upgrade, Close", False),
        ("1.0", None, False),
        ("1.0", b"Keep-Alive", True),
        ("2", None, True),
    ],
)
def test_only_kept_alive_connections_are_expected_back(
    version: str, connection: bytes | None, returns: bool
) -> None:
    headers = [(b"host", b"x")] + ([(b"connection", connection)] if connection else [])
    scope = {"client": ("127.0.0.1", 5), "http_version": version, "headers": headers}
    assert returning_client(scope) == (("127.0.0.1", 5) if returns else None)
    assert returning_client({"headers": headers}) is None  # no client address, nothing to expect


async def returns(batcher: Batcher, model: LoadedModel, every: float, count: int) -> list[Any]:
    """``count`` connections answered together come back one by one, ``every`` seconds apart."""
    scopes = [{"client": ("127.0.0.1", 100 + i)} for i in range(count)]
    for scope in scopes:
        batcher.answered(scope["client"])
    futures = []
    for i, scope in enumerate(scopes):
        if i:
            await asyncio.sleep(every)
        batcher.arriving_request(scope)
        futures.append(asyncio.ensure_future(batcher.predict(scope, model, query(i))))
    return await asyncio.gather(*futures)


def test_a_group_coming_back_slowly_is_waited_for_while_it_keeps_coming() -> None:
    model = echo_model()

    async def main(batcher: Batcher) -> list[Any]:
        batcher.wait_s = batcher.expect_window_s = 0.3  # as a slow model's calls would set them
        # The last is back 0.6 s after its answer, twice the window: still in the batch,
        # because the others kept coming back meanwhile.
        return await returns(batcher, model, every=0.2, count=4)

    results = run(main, max_wait_s=0.3)
    assert [labels(r) for r in results] == [[4000.0 + i] for i in range(4)]
    assert calls(model) == [("predict", 4)]


def test_no_batch_waits_past_the_longest_wait_for_a_group_still_coming() -> None:
    model = echo_model()

    async def main(batcher: Batcher) -> list[Any]:
        batcher.wait_s = batcher.expect_window_s = 0.3  # as a slow model's calls would set them
        return await returns(batcher, model, every=0.1, count=20)

    results = run(main, max_wait_s=0.05)  # so at most 0.5 s, while the group takes 1.9 s
    assert len(results) == 20
    first_call = calls(model)[0][1]
    assert 2 <= first_call < 20, calls(model)
    assert sum(rows for _, rows in calls(model)) == 20


def test_a_client_address_given_as_a_list_is_a_usable_key() -> None:
    # The ASGI spec allows [host, port] as a list (daphne sends one); the batcher keys by it.
    scope = {"client": ["127.0.0.1", 5], "http_version": "1.1", "headers": []}
    client = returning_client(scope)
    assert client == ("127.0.0.1", 5)
    assert {client: 1}[("127.0.0.1", 5)] == 1
