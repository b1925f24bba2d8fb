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
import os
import signal
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from restpredict.compiled import compile_model
from restpredict.errors import (
    InputError,
    MalformedBodyError,
    ModelLoadError,
    ReloadError,
    RestPredictError,
)
from restpredict.model import LoadedModel, load_configured_model
from restpredict.settings import Settings

if TYPE_CHECKING:  # openapi imports app, which imports this module
    from restpredict.openapi import OpenAPIContext, PathItems

__all__ = ["Reloader", "admin_routes", "openapi_paths", "prepare_model"]

logger = logging.getLogger("uvicorn.error")


def prepare_model(settings: Settings) -> LoadedModel:
    """Load, verify and warm up the configured model, on the configured backend.

    Everything that makes a model servable, in one place: start-up (CLI and each worker)
    and hot reload all go through here.
    """
    model = load_configured_model(settings)
    try:
        model.warm_up()
    except RestPredictError as exc:
        raise ModelLoadError(
            f"{model.source}: the warm-up prediction failed: {exc.detail}"
        ) from None
    return compile_model(model, settings)


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
            logger.info("reloaded model %s: sha256 %s", new.source, new.sha256)
            return new


def admin_routes(settings: Settings) -> list[Route]:
    """``POST /admin/reload``, only on a server with an API key (it is never open)."""
    return [] if settings.api_key is None else [Route("/admin/reload", reload, methods=["POST"])]


class _ReloadRequest(msgspec.Struct, forbid_unknown_fields=True):
    sha256: str | msgspec.UnsetType = msgspec.UNSET  # absent: keep the current pin; never null


async def reload(request: Request) -> Response:
    """Reload the configured model file; ``{"sha256": ...}`` pins the new file's hash."""
    wanted = _parse(await request.body())
    supervisor = request.app.state.serving.supervisor_pid
    pin = None if isinstance(wanted.sha256, msgspec.UnsetType) else wanted.sha256
    if supervisor is not None:
        if pin is not None:
            raise ReloadError(
                "with several workers a reload re-reads the configured file and pin; "
                "change the pin in the configuration and send SIGHUP instead"
            )
        os.kill(supervisor, signal.SIGHUP)  # uvicorn's supervisor replaces workers one by one
        return JSONResponse({"status": "restarting workers"}, status_code=202)
    model = await request.app.state.reloader.reload(pin)
    return JSONResponse({"status": "reloaded", "sha256": model.sha256, "model": model.name})


def _parse(body: bytes) -> _ReloadRequest:
    if not body.strip():
        return _ReloadRequest()
    try:
        wanted = msgspec.json.decode(body, type=_ReloadRequest)
    except msgspec.ValidationError as exc:
        raise InputError(f"reload request: {exc}", code="invalid_reload_request") from None
    except msgspec.DecodeError as exc:
        raise MalformedBodyError(f"reload request is not JSON: {exc}") from None
    if not isinstance(wanted.sha256, msgspec.UnsetType):
        wanted.sha256 = _checked_sha256(wanted.sha256)
    return wanted


def _checked_sha256(value: str) -> str:
    try:
        return Settings.model_validate({"sha256": value}).sha256 or ""
    except ValueError:
        raise InputError(
            "sha256 must be 64 hexadecimal characters", code="invalid_reload_request"
        ) from None


def openapi_paths(api: OpenAPIContext) -> PathItems:
    """``POST /admin/reload`` as an OpenAPI path item, when the server has the route."""
    if api.settings.api_key is None:
        return {}
    sha256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
    if api.settings.workers > 1:
        answer = api.ok(
            "Several workers: the supervisor was asked to replace them one by one; each new "
            "worker loads and verifies the configured file and pin itself.",
            _object(status={"const": "restarting workers"}),
            {"status": "restarting workers"},
        )
        answers = {"202": answer}
        refusal = "With several workers a pin in the body is refused: change the configuration."
    else:
        reloaded = _object(status={"const": "reloaded"}, sha256=sha256, model={"type": "string"})
        answers = {"200": api.ok("The new model is verified, warmed up and serving.", reloaded)}
        refusal = "The file failed to load, its pin, its version check or its warm-up."
    body = {"type": "object", "properties": {"sha256": sha256}, "additionalProperties": False}
    return {
        "/admin/reload": {
            "post": {
                "tags": ["operations"],
                "operationId": "reload",
                "summary": "Hot reload: re-read the configured model file and swap it in",
                "description": (
                    "Only on a server with an API key. The configured file is loaded, verified "
                    "(SHA-256 pin, scikit-learn version) and warmed up off the event loop, then "
                    "swapped in: no request sees a half-loaded model. An empty body keeps the "
                    "current pin; `sha256` pins the new file's hash (upper case and surrounding "
                    "whitespace are accepted too). The Content-Type is not checked."
                ),
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": body,
                            "example": {"sha256": api.model.sha256},
                        }
                    },
                },
                "responses": {
                    **answers,
                    "400": api.problem("The body is not parseable JSON."),
                    "409": api.problem(f"Refused; the old model keeps serving. {refusal}"),
                    "422": api.problem('JSON, but not `{"sha256": "<64 hex digits>"}`.'),
                },
            }
        }
    }


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON object with exactly these properties, all required."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
