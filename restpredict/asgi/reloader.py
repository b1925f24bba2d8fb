"""Hot reload: load, verify and warm a new model off the event loop, then swap it in.

The swap is one attribute store (``app.state.model = new``): a request that already
took the old model from ``current_model`` finishes with it, every later one gets the
new one, and no request sees a half-loaded model. A new model that fails to load,
fails its SHA-256 pin or version check, or fails its warm-up prediction is refused;
the old one keeps serving and the reason is logged (and returned by the admin route).

With several models, a model is reloaded by the repository API; a reload reads the
configuration again (``reread``) and applies its ``traffic``, ``shadow`` and
``shadow_tolerance`` (``reload_routing``): later requests split and shadow by them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.datastructures import State

from restpredict.asgi.shadow import ShadowTraffic
from restpredict.errors import ReloadError, RestPredictError
from restpredict.model.catalog import with_routing
from restpredict.model.loading import LoadedModel
from restpredict.model.prepare import prepare_model
from restpredict.model.schema import schema_changes
from restpredict.settings import Settings

__all__ = ["SEVERAL_MODELS", "Reloader", "in_own_thread", "prepare_replacement"]

logger = logging.getLogger("uvicorn.error")
_T = TypeVar("_T")
#: Why a model reload is refused when several are served.
SEVERAL_MODELS = (
    "several models are served: reload one with POST /v2/repository/models/{name}/load "
    "(the repository API); a reload reads traffic and shadows again only when the server "
    "was started by restpredict serve"
)


class Reloader:
    """Swaps ``state.model`` for a freshly verified one; one reload at a time."""

    def __init__(
        self, state: State, settings: Settings, reread: Callable[[], Settings] | None = None
    ) -> None:
        self._state = state
        self._settings = settings
        self._reread = reread  # the configuration read again, as the server was started
        self._pin = settings.sha256
        self._lock = asyncio.Lock()

    async def reload(
        self, sha256: str | None = None, *, allow_schema_change: bool = False
    ) -> LoadedModel:
        """The new model, now serving; or ReloadError with the old one still serving.

        A model whose schema differs from the serving one's is refused unless allowed here or
        by ``allow_schema_change`` in the settings: its clients would all get 422s, or answers
        of another kind. A refused model's memory is collected at once, not when traffic
        happens to trigger a collection (a refused 1 GB file held 1 GB until then).
        """
        if self._settings.several_models:
            raise ReloadError(SEVERAL_MODELS)
        async with self._lock:
            pin = sha256 or self._pin
            wanted = self._settings.model_copy(update={"sha256": pin})
            old: LoadedModel | None = self._state.model
            allowed = allow_schema_change or self._settings.allow_schema_change
            refusal = await self._prepare(wanted, old, allowed)
            if isinstance(refusal, str):
                gc.collect()  # the refused model and the frames its failure held
                kept = old.sha256 if old is not None else "nothing"
                logger.error("reload refused, still serving sha256 %s: %s", kept, refusal)
                raise ReloadError(f"{refusal}; still serving sha256 {kept}", serving_sha256=kept)
            new = refusal
            self._state.registry.swap(old, new)
            self._state.model = new
            self._state.metrics.observe_model(new, replacing=old)
            self._pin = pin
            where = new.origin.get("source", new.source)
            revision = new.origin.get("source_revision")
            where += f" ({revision})" if revision else ""
            logger.info("reloaded model %s: sha256 %s", where, new.sha256)
            return new

    async def reload_routing(self) -> Settings:
        """Several models: read the configuration again and apply its traffic split and shadows
        (the settings with them); ReloadError, the old ones still applying, if it is invalid."""
        reread = self._reread
        if reread is None:
            raise ReloadError(SEVERAL_MODELS)
        async with self._lock:
            try:
                fresh = await in_own_thread(reread)
                rerouted = with_routing(self._settings, fresh)
            except RestPredictError as exc:
                logger.error("reload refused, traffic and shadows unchanged: %s", exc.detail)
                raise ReloadError(f"{exc.detail}; traffic and shadows unchanged") from None
            state = self._state
            state.registry.set_traffic(rerouted.traffic)
            if state.shadow is not None:
                state.shadow.shadows = dict(rerouted.shadow)
                state.shadow.tolerance = rerouted.shadow_tolerance
            elif rerouted.shadow:
                state.shadow = ShadowTraffic(
                    rerouted.shadow,
                    state.registry,
                    state.metrics.observe_shadow,
                    rerouted.shadow_tolerance,
                )
            state.settings = self._settings = rerouted
            logger.info(
                "reloaded: traffic %s, shadow %s", dict(rerouted.traffic), dict(rerouted.shadow)
            )
            return rerouted

    async def _prepare(
        self, wanted: Settings, old: LoadedModel | None, allow_schema_change: bool
    ) -> LoadedModel | str:
        """The new model, ready to serve, or why it is refused."""
        return await in_own_thread(prepare_replacement, wanted, old, allow_schema_change)


def prepare_replacement(
    wanted: Settings, old: LoadedModel | None, allow_schema_change: bool
) -> LoadedModel | str:
    """The model ``wanted`` names, ready to replace ``old``, or why it is refused.

    The one check every reload goes through: in place (one worker) and in the supervisor of
    several, which prepares the new model before it forks workers to serve it.
    """
    try:
        new = prepare_model(wanted)
    except RestPredictError as exc:
        return exc.detail
    if old is None or allow_schema_change:
        return new
    changes = schema_changes(old.schema, new.schema)
    if changes:
        return (
            f"the new model's schema differs from the serving one's ({'; '.join(changes)}); "
            "its clients would break: allow it with allow_schema_change"
        )
    return new


async def in_own_thread(function: Callable[..., _T], *args: Any) -> _T:
    """``function(...)`` in a thread of its own, joined before this returns.

    Not a pool's thread: anyio's idle worker keeps its last result (a refused model) until its
    next job, and an executor's worker drops its work item only after the loop has been woken,
    so a refused model could outlive the collection meant for it.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def work() -> None:
        try:
            model = function(*args)
        except BaseException as exc:  # raised again in the awaiting task
            loop.call_soon_threadsafe(_fail, future, exc)
        else:
            loop.call_soon_threadsafe(_succeed, future, model)

    thread = threading.Thread(target=work, name="restpredict-reload", daemon=True)
    thread.start()
    try:
        return await future
    finally:
        await loop.run_in_executor(None, thread.join)


def _succeed(future: asyncio.Future[_T], result: _T) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[_T], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
