"""The Open Inference (V2) model repository extension, as Triton and MLServer define it.

``POST /v2/repository/index`` lists every configured model and version with its state
(``READY``, ``LOADING``, ``UNLOADING``, ``UNAVAILABLE``) and why; ``{"ready": true}`` lists only
the ready ones. ``POST /v2/repository/models/{name}/load`` loads (or reloads) every configured
version of ``name``: from ``models:`` or the model folder only, never a path or config from the
request; each version is loaded, verified and warmed up off the event loop and serves only
then, and a version that fails keeps what served before. ``.../unload`` stops the name taking
new requests at once, waits for the requests in flight on it, then frees it.

Off unless ``repository_api`` or ``model_dir`` is set; the API key protects these paths as any
other. With several worker processes, load and unload are handed to the supervisor, which
loads once and rolls every worker onto the result (``server.repository``); the answer waits for
that, and the index is the supervisor's, the same from every worker.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from restpredict.asgi.body import read_body
from restpredict.asgi.fleet import (
    IndexEntry,
    ReloadRequest,
    ask_supervisor,
    fleet_status,
)
from restpredict.asgi.registry import LOADING, READY, UNAVAILABLE, UNLOADING, ModelRegistry
from restpredict.asgi.reloader import in_own_thread
from restpredict.asgi.responses import JSONResponse
from restpredict.asgi.state import ServingState
from restpredict.codecs.payload import decode_json
from restpredict.errors import (
    InputError,
    NotFoundError,
    NotReadyError,
    RepositoryError,
    RestPredictError,
)
from restpredict.model.catalog import Catalogued, catalog, catalogued
from restpredict.model.prepare import prepare_version
from restpredict.routes.protocol import client_status, endpoint
from restpredict.settings import Settings

__all__ = ["repository_enabled", "routes"]

logger = logging.getLogger("uvicorn.error")
_LOCK = "repository_lock"


class _IndexRequest(msgspec.Struct):
    ready: bool = False


class _ModelRequest(msgspec.Struct):
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)


def repository_enabled(settings: Settings) -> bool:
    """The repository routes exist when asked for, or with a model folder to load from."""
    return settings.repository_api or settings.model_dir is not None


def _render(error: RestPredictError) -> Response:
    return JSONResponse({"error": error.detail}, status_code=client_status(error))


@endpoint(_render)
async def index(request: Request) -> Response:
    """``POST /v2/repository/index``: every configured name and version, with its state."""
    asked: _IndexRequest = await _body(request, _IndexRequest)
    registry: ModelRegistry = request.app.state.registry
    settings: Settings = request.app.state.settings
    fleet = fleet_status(request.app.state.serving.fleet_dir)
    if fleet is not None and fleet.index is not None:  # the supervisor's, for every worker
        listed = [_entry(e) for e in fleet.index]
        known = {(e["name"], e.get("version")) for e in listed}
        for item in catalog(settings):
            if (item.name, item.version) not in known:
                listed.append(
                    _entry(IndexEntry(item.name, UNAVAILABLE, "not loaded", item.version))
                )
        return JSONResponse([e for e in listed if not asked.ready or e["state"] == READY])
    for item in catalog(settings) if settings.several_models else []:
        served = registry.declare(item.name, item.version, default=item.default)
        if served.state == UNAVAILABLE and not served.reason:
            served.reason = "not loaded"
    entries = [s.index_entry() for s in registry.entries() if not asked.ready or s.state == READY]
    return JSONResponse(entries)


def _entry(entry: IndexEntry) -> dict[str, Any]:
    """An index entry in the order a one-worker server lists it."""
    doc: dict[str, Any] = {"name": entry.name}
    if entry.version is not None:
        doc["version"] = entry.version
    doc["state"], doc["reason"] = entry.state, entry.reason
    return doc


@endpoint(_render)
async def load(request: Request) -> Response:
    """``POST /v2/repository/models/{name}/load``: load or reload every configured version."""
    asked: _ModelRequest = await _body(request, _ModelRequest)
    if asked.parameters:
        raise InputError(
            f"load parameters ({', '.join(sorted(asked.parameters))}) are not supported: a "
            "model loads from its configured source only (models: or the model folder)",
            code="unsupported_parameter",
        )
    name = request.path_params["name"]
    settings: Settings = request.app.state.settings
    if not settings.several_models:
        raise RepositoryError(
            "this server serves one model (MODEL): reload it with POST /admin/reload, or serve "
            "with models: or --model-dir to load models by name"
        )
    items = catalogued(settings, name, None)
    if request.app.state.serving.supervisor_pid is not None:
        return await _hand_over(request, "load", name)
    async with _lock(request):
        registry: ModelRegistry = request.app.state.registry
        failures = [f for item in items if (f := await _load_one(request, registry, item))]
    if failures:
        raise RepositoryError("; ".join(failures))
    return JSONResponse({})


@endpoint(_render)
async def unload(request: Request) -> Response:
    """``POST /v2/repository/models/{name}/unload``: drain, then free every version of it."""
    await _body(request, _ModelRequest)  # tritonclient sends parameters.unload_dependents
    name = request.path_params["name"]
    if not request.app.state.settings.several_models:
        raise RepositoryError(
            "this server serves one model (MODEL), which it could not load again: serve with "
            "models: or --model-dir to unload models by name"
        )
    if request.app.state.serving.supervisor_pid is not None:
        return await _hand_over(request, "unload", name)
    registry: ModelRegistry = request.app.state.registry
    async with _lock(request):
        versions = [s for s in registry.versions(name) if s.state == READY]
        if not versions:
            raise NotFoundError(
                f"model {name!r} is not loaded; this server serves {registry.served_list()}",
                code="model_not_found",
            )
        for served in versions:
            registry.set_state(served, UNLOADING, "draining requests in flight")
        for served in versions:  # new requests no longer reach it; answer those that did
            if served.inflight > 0:
                await served.idle.wait()
            if served.model is not None:
                request.app.state.metrics.forget_model(served.model)
            registry.set_state(served, UNAVAILABLE, "unloaded")
        if request.app.state.model is not None and registry.default is None:
            request.app.state.model = None
        gc.collect()  # the unloaded models' memory, now rather than when traffic triggers it
    logger.info("unloaded model %s (%d version(s))", name, len(versions))
    return JSONResponse({})


async def _load_one(request: Request, registry: ModelRegistry, item: Catalogued) -> str | None:
    """Load ``item``; why it failed, or None. What served before keeps serving on failure."""
    served = registry.declare(item.name, item.version, default=item.default)
    before, before_reason = served.state, served.reason
    if served.state != READY:
        registry.set_state(served, LOADING, "loading")
    try:
        model = await in_own_thread(prepare_version, item)
    except RestPredictError as exc:
        registry.set_state(served, before if before == READY else UNAVAILABLE, exc.detail)
        if before == READY:
            served.reason = before_reason
        gc.collect()
        logger.error("loading %s failed: %s", item.label, exc.detail)
        return f"{item.label}: {exc.detail}"
    previous = served.model
    registry.put(model, default=item.default)
    request.app.state.model = registry.default
    request.app.state.metrics.observe_model(model, replacing=previous)
    logger.info("loaded %s from %s: sha256 %s", item.label, item.source, model.sha256)
    return None


async def _hand_over(request: Request, action: Literal["load", "unload"], name: str) -> Response:
    """Several workers: the supervisor loads or unloads, rolls every worker, then answers."""
    serving: ServingState = request.app.state.serving
    assert serving.supervisor_pid is not None and serving.fleet_dir is not None
    asked = ReloadRequest(uuid.uuid4().hex, action=action, name=name)
    wait = request.app.state.settings.reload_timeout
    outcome = await ask_supervisor(serving.supervisor_pid, serving.fleet_dir, asked, wait)
    if outcome is None:
        raise RepositoryError(f"the supervisor did not answer the {action} in {wait:g} s")
    if outcome.accepted:
        return JSONResponse({})
    if outcome.status == 404:
        raise NotFoundError(outcome.detail, code="model_not_found")
    if outcome.status == 503:
        raise NotReadyError(outcome.detail)
    raise RepositoryError(outcome.detail)


def _lock(request: Request) -> asyncio.Lock:
    """One load or unload at a time per app (a second waits for the first)."""
    state = request.app.state
    lock: asyncio.Lock | None = getattr(state, _LOCK, None)
    if lock is None:
        lock = asyncio.Lock()
        setattr(state, _LOCK, lock)
    return lock


async def _body(request: Request, kind: type[Any]) -> Any:
    """The optional JSON body (absent or empty means the defaults)."""
    settings: Settings = request.app.state.settings
    body = await read_body(request, settings.max_body_bytes)
    if not body.strip():
        return kind()
    return decode_json(body, kind)


routes = [
    Route("/v2/repository/index", index, methods=["POST"]),
    Route("/v2/repository/models/{name}/load", load, methods=["POST"]),
    Route("/v2/repository/models/{name}/unload", unload, methods=["POST"]),
]
