"""Shadow traffic: a version that sees the requests of its name, never answers them.

Each answered prediction of a name with a shadow (``shadow: {flowers: "2"}``) is predicted
again by the shadow version after the answer has been computed, in the thread pool, never on
the request's path: its answer is compared with the primary's and thrown away. At most
``LIMIT`` shadow calls run at once per process; one that would exceed it is dropped (counted),
so under load the shadow costs nothing but a counter. Labels agree when equal; numbers (a
regressor's predictions) when within ``shadow_tolerance``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import numpy as np
from starlette.concurrency import run_in_threadpool

from restpredict.asgi.registry import READY, ModelRegistry
from restpredict.codecs.payload import Query
from restpredict.model.loading import LoadedModel, Prediction

__all__ = ["LIMIT", "ShadowTraffic", "agree"]

logger = logging.getLogger("restpredict.shadow")

#: Shadow calls in flight per process; more are dropped.
LIMIT = 2
Outcome = Callable[[str, str, str], None]  # (name, shadow version, outcome)


class ShadowTraffic:
    """Sends copies of answered queries to each name's shadow version and counts agreement."""

    def __init__(
        self,
        shadows: Mapping[str, str],
        registry: ModelRegistry,
        record: Outcome,
        tolerance: float,
    ) -> None:
        self.shadows = dict(shadows)
        self.registry = registry
        self.record = record
        self.tolerance = tolerance
        self.running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def after(self, model: LoadedModel, query: Query, prediction: Prediction) -> None:
        """The primary answered ``query``: compare its shadow's answer, later, if there is room."""
        version = self.shadows.get(model.name)
        if version is None or model.version == version or prediction.labels is None:
            return
        served = self.registry.get(model.name, version)
        if served is None or served.state != READY or served.model is None:
            self.record(model.name, version, "unavailable")
            return
        if self.running >= LIMIT:
            self.record(model.name, version, "dropped")
            return
        self.running += 1
        task = asyncio.get_running_loop().create_task(
            self._compare(served.model, query, prediction.labels, version)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _compare(
        self, shadow: LoadedModel, query: Query, primary: np.ndarray, version: str
    ) -> None:
        try:
            answer = await run_in_threadpool(shadow.predict, query.rows, labels=True)
        except Exception as exc:  # the shadow's failure is counted, never the client's
            logger.warning("shadow %s version %s failed: %s", shadow.name, version, exc)
            outcome = "failed"
        else:
            assert answer.labels is not None
            same = agree(primary, answer.labels, self.tolerance)
            outcome = "agree" if same else "disagree"
        finally:
            self.running -= 1
        self.record(shadow.name, version, outcome)


def agree(primary: np.ndarray, shadow: np.ndarray, tolerance: float) -> bool:
    """Every row's answer equal (labels), or within ``tolerance`` (numbers)."""
    if primary.shape != shadow.shape:
        return False
    if primary.dtype.kind == "f" and shadow.dtype.kind in "fiu":
        return bool(np.allclose(primary, shadow, rtol=0.0, atol=tolerance))
    return bool(primary.tolist() == shadow.tolist())
