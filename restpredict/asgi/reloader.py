"""Hot reload: load, verify and warm a new model off the event loop, then swap it in.

The swap is one attribute store (``app.state.model = new``): a request that already
took the old model from ``current_model`` finishes with it, every later one gets the
new one, and no request sees a half-loaded model. A new model that fails to load,
fails its SHA-256 pin or version check, or fails its warm-up prediction is refused;
the old one keeps serving and the reason is logged (and returned by the admin route).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State

from restpredict.errors import ReloadError, RestPredictError
from restpredict.model.loading import LoadedModel
from restpredict.model.prepare import prepare_model
from restpredict.settings import Settings

__all__ = ["Reloader"]

logger = logging.getLogger("uvicorn.error")


class Reloader:
    """Swaps ``state.model`` for a freshly verified one; one reload at a time."""

    def __init__(self, state: State, settings: Settings) -> None:
        self._state = state
        self._settings = settings
        self._pin = settings.sha256
        self._lock = asyncio.Lock()

    async def reload(self, sha256: str | None = None) -> LoadedModel:
        """The new model, now serving; or ReloadError with the old one still serving."""
        async with self._lock:
            pin = sha256 or self._pin
            wanted = self._settings.model_copy(update={"sha256": pin})
            old: LoadedModel | None = self._state.model
            try:
                new = await run_in_threadpool(prepare_model, wanted)
            except RestPredictError as exc:
                kept = old.sha256 if old is not None else "nothing"
                logger.error("reload refused, still serving sha256 %s: %s", kept, exc.detail)
                raise ReloadError(
                    f"{exc.detail}; still serving sha256 {kept}", serving_sha256=kept
                ) from None
            self._state.model = new
            self._pin = pin
            where = new.origin.get("source", new.source)
            revision = new.origin.get("source_revision")
            where += f" ({revision})" if revision else ""
            logger.info("reloaded model %s: sha256 %s", where, new.sha256)
            return new
