"""``POST /admin/reload``: hot reload over HTTP, on a server with an API key (never open).

One worker reloads in place (``asgi.reloader.Reloader``). With several, the request is handed to
the supervisor (``asgi.fleet``, then SIGHUP), which prepares and checks the new model exactly as
one worker would and then rolls its workers onto it; this answers once the supervisor has
accepted (202, the roll under way) or refused (409) it.

With several models, a reload reads the configuration again and applies its ``traffic``,
``shadow`` and ``shadow_tolerance`` (models are reloaded by the repository API): in place with
one worker, by the supervisor with several, which answers once every worker applies them.
"""

from __future__ import annotations

import uuid

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from restpredict.asgi.fleet import ReloadRequest, ask_supervisor
from restpredict.errors import InputError, MalformedBodyError, ReloadError
from restpredict.settings import Settings

__all__ = ["admin_routes", "reload"]

SEVERAL_PIN = (
    "several models are served: a sha256 pin names one model's file; pin each in models: and "
    "load it with POST /v2/repository/models/{name}/load"
)


def admin_routes(settings: Settings) -> list[Route]:
    """``POST /admin/reload``, only on a server with an API key (it is never open)."""
    return [] if settings.api_key is None else [Route("/admin/reload", reload, methods=["POST"])]


class _ReloadRequest(msgspec.Struct, forbid_unknown_fields=True):
    sha256: str | msgspec.UnsetType = msgspec.UNSET  # absent: keep the current pin; never null
    allow_schema_change: bool = False  # this reload may change the inputs or outputs


async def reload(request: Request) -> Response:
    """Reload the configured model file; ``{"sha256": ...}`` pins the new file's hash."""
    wanted = _parse(await request.body())
    serving = request.app.state.serving
    pin = None if isinstance(wanted.sha256, msgspec.UnsetType) else wanted.sha256
    if serving.supervisor_pid is not None and serving.fleet_dir is not None:
        if pin is not None and request.app.state.settings.several_models:
            raise ReloadError(SEVERAL_PIN)
        handed = ReloadRequest(uuid.uuid4().hex, pin, wanted.allow_schema_change)
        wait = request.app.state.settings.reload_timeout
        outcome = await ask_supervisor(serving.supervisor_pid, serving.fleet_dir, handed, wait)
        if outcome is None:
            raise ReloadError(f"the supervisor did not answer the reload request in {wait:g} s")
        if not outcome.accepted:
            raise ReloadError(outcome.detail, serving_sha256=outcome.sha256)
        if request.app.state.settings.several_models:  # answered once every worker rolled
            return JSONResponse({"status": "reloaded", "detail": outcome.detail})
        body = {"status": "rolling", "sha256": outcome.sha256, "model": outcome.model}
        return JSONResponse(body, status_code=202)
    if request.app.state.settings.several_models:
        if pin is not None:
            raise ReloadError(SEVERAL_PIN)
        routed = await request.app.state.reloader.reload_routing()
        return JSONResponse(
            {"status": "reloaded", "traffic": routed.traffic, "shadow": routed.shadow}
        )
    model = await request.app.state.reloader.reload(
        pin, allow_schema_change=wanted.allow_schema_change
    )
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
