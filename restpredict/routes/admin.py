"""``POST /admin/reload``: hot reload over HTTP, on a server with an API key (never open).

One worker reloads in place (``asgi.reloader.Reloader``); with several, the supervisor is asked
to replace its workers one by one (SIGHUP), each of which loads and verifies the model itself.
"""

from __future__ import annotations

import os
import signal

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from restpredict.errors import InputError, MalformedBodyError, ReloadError
from restpredict.settings import Settings

__all__ = ["admin_routes", "reload"]


def admin_routes(settings: Settings) -> list[Route]:
    """``POST /admin/reload``, only on a server with an API key (it is never open)."""
    return [] if settings.api_key is None else [Route("/admin/reload", reload, methods=["POST"])]


class _ReloadRequest(msgspec.Struct, forbid_unknown_fields=True):
    sha256: str | msgspec.UnsetType = msgspec.UNSET  # absent: keep the current pin; never null
    allow_schema_change: bool = False  # this reload may change the inputs or outputs


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
