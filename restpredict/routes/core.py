"""The core routes: ``/predict``, health, ``/metadata`` and ``/metrics``.

Errors are raised, as everywhere, and answered by the app's handlers (problem+json).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from restpredict._version import __version__
from restpredict.asgi.batching import Batcher
from restpredict.asgi.body import body_headers, check_json_content_type, receive_body
from restpredict.asgi.fleet import degraded_headers, fleet_status
from restpredict.asgi.query import predict_with
from restpredict.asgi.registry import ModelRegistry
from restpredict.asgi.responses import JSONResponse, send_json
from restpredict.asgi.state import current_model, model_for
from restpredict.codecs.payload import decode_predict, encode_predictions
from restpredict.errors import NotReadyError
from restpredict.observability.exchange import timed
from restpredict.observability.metrics import Metrics
from restpredict.settings import Settings

__all__ = [
    "PredictEndpoint",
    "core_routes",
    "live",
    "metadata",
    "metrics_endpoint",
    "model_routes",
    "models_index",
    "ready",
]


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
        name = scope["path_params"].get("name") if "path_params" in scope else None
        model = model_for(scope, scope["app"].state, name)
        settings = self.settings
        content_type, declared = body_headers(scope)
        if content_type is not None:
            check_json_content_type(content_type)
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


async def live(request: Request) -> Response:
    """The process is up and its event loop answers."""
    return JSONResponse({"status": "live"})


async def ready(request: Request) -> Response:
    """The models are loaded, warm-up predictions succeeded, and no shutdown has begun.

    With several workers, the answer also counts them; fewer serving than wanted (a replacement
    that cannot start) is still ready, since the server answers, with ``X-Degraded`` set.
    """
    registry: ModelRegistry = request.app.state.registry
    body: dict[str, object]
    if registry.default is not None or not request.app.state.ready:
        body = {"status": "ready", "model": current_model(request).name}
    elif not registry.names() or not registry.all_ready():
        raise NotReadyError("not every configured model is ready yet; retry shortly")
    else:
        body = {"status": "ready", "models": registry.names()}
    serving = request.app.state.serving
    if serving.draining:
        raise NotReadyError("the server is shutting down")
    fleet = fleet_status(serving.fleet_dir)
    if fleet is not None:
        body["workers"] = {"serving": fleet.serving, "wanted": fleet.wanted}
        body["degraded"] = fleet.degraded
        if fleet.degraded and fleet.problem:
            body["problem"] = fleet.problem
    return JSONResponse(body, headers=degraded_headers(fleet))


async def metadata(request: Request) -> Response:
    """What is being served: file, hash, schema, versions; and a rolling reload under way
    (``/models/{name}/metadata``: of that model)."""
    model = current_model(request, request.path_params.get("name"))
    body = {**model.metadata(), "restpredict_version": __version__}
    fleet = fleet_status(request.app.state.serving.fleet_dir)
    if fleet is not None and fleet.rollout is not None:
        body["rollout"] = fleet.rollout
    return JSONResponse(body)


async def models_index(request: Request) -> Response:
    """``GET /models``: the models served, each with its versions and routes."""
    registry: ModelRegistry = request.app.state.registry
    current_model(request, registry.names()[0] if registry.names() else None)  # 503 before
    default = registry.default
    return JSONResponse(
        {
            "models": [
                {
                    "name": name,
                    "versions": [s.version for s in registry.versions(name) if s.version],
                    "default": default is not None and default.name == name,
                    "predict": f"/models/{name}/predict",
                }
                for name in registry.names()
            ]
        }
    )


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: Prometheus text (or OpenMetrics, if the scraper asks for it).

    Rendering a few hundred samples takes milliseconds of pure Python, so it runs in the
    thread pool rather than holding up every other request on the event loop.
    """
    metrics: Metrics = request.app.state.metrics
    accept = request.headers.get("accept")
    body, content_type = await run_in_threadpool(metrics.exposition, accept)
    return Response(body, media_type=content_type)


def model_routes(predict: PredictEndpoint) -> list[Route]:
    """``/predict`` and ``/metadata`` of each model served, by name."""
    return [
        Route("/models", models_index, methods=["GET"]),
        Route("/models/{name}/predict", predict, methods=["POST"]),
        Route("/models/{name}/metadata", metadata, methods=["GET"]),
    ]


def core_routes(predict: PredictEndpoint) -> list[Route]:
    """The core routes, with ``predict`` (the app's endpoint, which ``DirectRoute`` shares)."""
    return [
        Route("/predict", predict, methods=["POST"]),
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        Route("/metadata", metadata, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
