"""The Starlette application: routes, body limits and the one error-to-HTTP mapping.

``create_app(settings)`` is the factory uvicorn calls (once per worker). The model
is loaded and warmed up in the lifespan, off the event loop; ``/health/ready``
answers 503 until that has succeeded.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from restpredict._version import __version__
from restpredict.batching import Batcher, batching_middleware, make_batcher
from restpredict.compiled import backend_name
from restpredict.errors import (
    MethodNotAllowedError,
    NotFoundError,
    NotReadyError,
    PayloadTooLargeError,
    RestPredictError,
    UnsupportedMediaTypeError,
)
from restpredict.middleware import protective_middleware
from restpredict.model import LoadedModel, Prediction
from restpredict.observability import (
    AccessMiddleware,
    exchange_of,
    instrument,
    metrics_endpoint,
    record_rows,
    timed,
)
from restpredict.payload import Query, decode_predict, encode_predictions
from restpredict.reload import Reloader, admin_routes, prepare_model
from restpredict.serving import ServingHeaders, ServingState
from restpredict.settings import Settings

__all__ = [
    "JSON",
    "PROBLEM_JSON",
    "YOUNG_COLLECTION_THRESHOLD",
    "DirectRoute",
    "JSONResponse",
    "PredictEndpoint",
    "create_app",
    "current_model",
    "model_for",
    "predict_with",
    "problem_response",
    "read_body",
    "receive_body",
    "run_query",
    "send_json",
]

JSON = "application/json"
logger = logging.getLogger("uvicorn.error")
PROBLEM_JSON = "application/problem+json"


#: Young objects allocated (net) before the collector runs, once the server serves.
YOUNG_COLLECTION_THRESHOLD = 10_000


@contextlib.contextmanager
def _serving_collection() -> Iterator[None]:
    """Garbage collection tuned for serving, restored after.

    The model, scikit-learn and friends are long-lived: a full collection of them took about
    0.3 s here (the worst p99 spikes under load), so they are frozen out of it. And the
    requests in flight hold more objects than Python's 700 that start a young collection: at
    32 clients one ran every ~30 requests, found nothing to free, and cost 3.5 µs a request
    (~100 µs each). At 10,000 one runs every few thousand requests (~1 ms each); garbage in
    reference cycles, the only kind it frees, waits that much longer.
    """
    gc.freeze()
    threshold = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


class JSONResponse(Response):
    """A response encoded by msgspec (fast, and it refuses NaN rather than emit bad JSON)."""

    media_type = JSON

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else msgspec.json.encode(content)


def create_app(
    settings: Settings, model: LoadedModel | None = None, *, metrics_dir: Path | None = None
) -> Starlette:
    """Build the app around ``model``, a prepared one (``reload.prepare_model``), or prepare
    the configured model in the lifespan when none is given (each worker of several).

    ``metrics_dir`` is the multiprocess metrics directory ``server.run`` made for its workers.
    """

    # Imported here: the protocol modules predict through this module's run_query.
    from restpredict.docs import routes as docs_routes
    from restpredict.protocols import routes as protocol_routes

    batcher = make_batcher(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loaded = model or await run_in_threadpool(prepare_model, settings)
        async with contextlib.AsyncExitStack() as stack:
            if batcher is not None:
                app.state.batcher = await stack.enter_async_context(batcher)
            app.state.model = loaded
            app.state.metrics.observe_model(loaded)
            stack.enter_context(_serving_collection())
            app.state.ready = True
            yield
            app.state.ready = False

    serving = ServingState()
    predict = PredictEndpoint(settings, batcher)
    app = _ServingApp(
        middleware=[
            *protective_middleware(settings, problem_response),
            *batching_middleware(batcher),
            Middleware(DirectRoute, method="POST", path="/predict", endpoint=predict),
        ],
        routes=[
            Route("/predict", predict, methods=["POST"]),
            Route("/health/live", live, methods=["GET"]),
            Route("/health/ready", ready, methods=["GET"]),
            Route("/metadata", metadata, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            *protocol_routes,
            *admin_routes(settings),
            *docs_routes,
        ],
        exception_handlers={
            RestPredictError: _restpredict_error,
            HTTPException: _http_exception,
            Exception: _unexpected_error,
        },
        lifespan=lifespan,
    )
    # Starlette would answer "/predict/" with a 307 to a URL built from the client's Host
    # header: a redirect anyone can point at another site. A path is served as it is, or 404.
    app.router.redirect_slashes = False
    metrics = instrument(app, settings, metrics_dir, response_headers=ServingHeaders(serving))
    if batcher is not None:
        batcher.on_batch = metrics.observe_batch
    app.state.settings = settings
    app.state.batcher = None
    app.state.model = None
    app.state.ready = False
    app.state.serving = serving
    app.state.reloader = Reloader(app.state, settings)
    return app


class _ServingApp(Starlette):
    """Starlette without its outermost ``ServerErrorMiddleware`` when ours comes next.

    ``AccessMiddleware`` already answers an unhandled error with the app's 500 handler (with
    the request id) and re-raises it for the server to log, as that layer would: one layer and
    one send wrapper fewer on every request (~2 µs in-process).
    """

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if isinstance(stack, ServerErrorMiddleware) and isinstance(stack.app, AccessMiddleware):
            return stack.app
        return stack


class PredictEndpoint:
    """``POST /predict``: features or named instances in, predictions (and probabilities) out.

    Plain ASGI rather than a ``Request`` -> ``Response`` function: this is the route that
    carries the load, and building those two objects cost about as much as the rest of the
    request's own work. Errors are raised, as everywhere, and answered by the app's handlers.
    """

    def __init__(self, settings: Settings, batcher: Batcher | None) -> None:
        # Fixed for the app's life: read here, not from ``app.state`` on every request.
        self.settings = settings
        self.batcher = batcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        model = model_for(scope, scope["app"].state)
        settings = self.settings
        content_type, declared = _body_headers(scope)
        if content_type is not None:
            _check_json_content_type(content_type)
        body = await receive_body(receive, settings.max_body_bytes, declared)
        with timed(scope, "decode"):
            query = decode_predict(
                body,
                model.schema,
                max_rows=settings.max_rows,
                ignore_unknown=settings.unknown_columns == "ignore",
            )
        prediction = await predict_with(self.batcher, scope, model, query)
        await send_json(send, encode_predictions(model, prediction))


class DirectRoute:
    """ASGI middleware: one busy route straight to its endpoint, past Starlette's exception
    middleware and router (measured in-process: 13 of the 96 µs a one-row prediction cost
    the app). Its errors get the answer the app's handler gives them; everything else, and
    every other request, takes the usual way. The route stays in the router too, for the
    405 of other methods, the route templates of the metrics and the OpenAPI document.
    """

    def __init__(self, app: ASGIApp, *, method: str, path: str, endpoint: ASGIApp) -> None:
        self.app = app
        self.method = method
        self.path = path
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != self.path
            or scope["method"] != self.method
            or scope.get("root_path")  # the router strips it: leave such paths to the router
        ):
            await self.app(scope, receive, send)
            return
        try:
            await self.endpoint(scope, receive, send)
        except RestPredictError as error:  # raised before the response starts, as everywhere
            await problem_response(error)(scope, receive, send)


async def run_query(request: Request, model: LoadedModel, query: Query) -> Prediction:
    """The one path every endpoint predicts through, off the event loop (batched when on)."""
    return await predict_with(request.app.state.batcher, request.scope, model, query)


async def predict_with(
    batcher: Batcher | None, scope: Scope, model: LoadedModel, query: Query
) -> Prediction:
    """``run_query`` for plain ASGI endpoints: through the app's batcher (running once the
    app is ready), or, without one, one call in a thread."""
    record_rows(scope, len(query))
    try:
        with timed(scope, "predict"):
            if batcher is not None:
                return await batcher.predict(scope, model, query)
            return await run_in_threadpool(
                model.predict, query.rows, labels=query.labels, proba=query.proba
            )
    except RestPredictError as error:
        if error.log_detail is not None:  # the client gets a generic detail; the log, this
            request_id = exchange_of(scope).request_id
            logger.warning("request %s: %s (%s)", request_id, error.detail, error.log_detail)
        raise


async def send_json(send: Send, body: bytes, status: int = 200) -> None:
    """A complete JSON response in two messages, with no Response object in between."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def live(request: Request) -> Response:
    """The process is up and its event loop answers."""
    return JSONResponse({"status": "live"})


async def ready(request: Request) -> Response:
    """The model is loaded, a warm-up prediction succeeded, and no shutdown has begun."""
    current_model(request)
    if request.app.state.serving.draining:
        raise NotReadyError("the server is shutting down")
    return JSONResponse({"status": "ready", "model": request.app.state.model.name})


async def metadata(request: Request) -> Response:
    """What is being served: file, hash, schema, versions."""
    model = current_model(request)
    return JSONResponse(
        {**model.metadata(), "backend": backend_name(model), "restpredict_version": __version__}
    )


def current_model(request: Request) -> LoadedModel:
    """The model serving this request, or NotReadyError (503)."""
    return model_for(request.scope, request.app.state)


def model_for(scope: Scope, state: State) -> LoadedModel:
    """``current_model`` from a scope: kept in the request state for ``X-Model-SHA256``."""
    model: LoadedModel | None = state.model
    if not state.ready or model is None:
        raise NotReadyError("the model is not loaded yet; retry shortly")
    scope.setdefault("state", {})["model"] = model  # the model this request is answered by
    return model


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused early by Content-Length and again by counting streamed bytes."""
    return await receive_body(request.receive, limit, request.headers.get("content-length"))


async def receive_body(receive: Receive, limit: int, declared: str | None) -> bytes:
    """``read_body`` for plain ASGI endpoints, given the declared Content-Length if any."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"body is {declared} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _body_headers(scope: Scope) -> tuple[str | None, str | None]:
    """Content-Type and Content-Length, the first of each, as Starlette's Headers reads them."""
    content_type = length = None
    for name, value in scope["headers"]:
        if name == b"content-type" and content_type is None:
            content_type = value.decode("latin-1")
        elif name == b"content-length" and length is None:
            length = value.decode("latin-1")
    return content_type, length


@functools.lru_cache(maxsize=64)
def _check_json_content_type(value: str) -> None:
    """Refuse what is not JSON in UTF-8 (the few values clients send are remembered as fine).

    Parameters other than ``charset`` are ignored, as RFC 9110 lets a recipient do."""
    media, *params = value.split(";")
    media = media.strip().lower()
    charset = "utf-8"
    for param in params:
        name, _, given = param.partition("=")
        if name.strip().lower() == "charset":
            charset = given.strip().strip('"').lower()
    if (media == JSON or media.endswith("+json")) and charset in ("utf-8", "utf8"):
        return
    raise UnsupportedMediaTypeError(
        f"Content-Type {value!r} is not supported; send application/json (UTF-8)"
    )


def problem_response(error: RestPredictError, headers: dict[str, str] | None = None) -> Response:
    """RFC 9457 problem+json, plus a stable ``code``: the one error schema of the API."""
    body = {
        "type": f"urn:restpredict:problem:{error.code}",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
        **error.extra,
    }
    return JSONResponse(body, status_code=error.status, headers=headers, media_type=PROBLEM_JSON)


async def _restpredict_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RestPredictError)
    return problem_response(exc)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allowed = exc.headers.get("Allow", "") if exc.headers else ""
        error: RestPredictError = MethodNotAllowedError(
            f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
        )
        return problem_response(error, headers={"Allow": allowed})
    if exc.status_code == 404:
        error = NotFoundError(f"no route for {request.url.path}")
    else:
        error = RestPredictError(str(exc.detail))
        error.status = exc.status_code  # type: ignore[misc]
    return problem_response(error)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    return problem_response(RestPredictError("unexpected server error; see the server log"))
