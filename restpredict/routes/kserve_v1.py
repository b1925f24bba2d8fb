"""KServe V1 / TensorFlow Serving REST: list, status and ``:predict`` of each model served.

``{"instances": ...}`` or ``{"inputs": ...}`` (rows, named records, or TF Serving's columnar
object) in, ``{"predictions": [...]}`` out, validated by ``codecs.payload.rows_to_query`` like
``/predict`` and predicted through ``asgi.query.run_query``. Errors are ``{"error": ...}``; unlike
KServe's own scikit-learn server, which answers 500 to any input the model refuses, a
client's mistake (a wrong feature count, say) is a 400 that says what was expected. Like
KServe, the body is read as JSON whatever its Content-Type (KServe's curl examples send none).
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from restpredict.asgi.body import read_body
from restpredict.asgi.query import run_query
from restpredict.asgi.registry import ModelRegistry
from restpredict.asgi.responses import JSONResponse
from restpredict.asgi.state import current_model
from restpredict.codecs.payload import Query, decode_json, decode_table, rows_to_query
from restpredict.errors import InputError, RestPredictError
from restpredict.model.loading import LoadedModel
from restpredict.observability.exchange import timed
from restpredict.routes.protocol import client_status, endpoint, served_model
from restpredict.settings import Settings

__all__ = ["routes"]


class _PredictRequest(msgspec.Struct):
    instances: msgspec.Raw = msgspec.Raw()
    inputs: msgspec.Raw = msgspec.Raw()


def _render(error: RestPredictError) -> Response:
    return JSONResponse({"error": error.detail}, status_code=client_status(error))


@endpoint(_render)
async def list_models(request: Request) -> Response:
    """``GET /v1/models``: the names of the models served."""
    registry: ModelRegistry = request.app.state.registry
    names = registry.names()
    current_model(request, names[0] if names else None)  # 503 until ready
    return JSONResponse({"models": names})


@endpoint(_render)
async def model_status(request: Request) -> Response:
    """``GET /v1/models/{name}``: ready once loaded and warmed up; 503 before, 404 for others."""
    model = served_model(request, request.path_params["name"])
    return JSONResponse({"name": model.name, "ready": True})


@endpoint(_render)
async def predict(request: Request) -> Response:
    """``POST /v1/models/{name}:predict``."""
    model = served_model(request, request.path_params["name"])
    settings: Settings = request.app.state.settings
    body = await read_body(request, settings.max_body_bytes)  # any Content-Type, as KServe
    with timed(request.scope, "decode"):
        query = _decode(body, model, settings)
    prediction = await run_query(request, model, query)
    assert prediction.labels is not None
    return JSONResponse(msgspec.json.encode({"predictions": prediction.labels.tolist()}))


def _decode(body: bytes, model: LoadedModel, settings: Settings) -> Query:
    envelope: _PredictRequest = decode_json(body, _PredictRequest)
    if bool(envelope.instances) == bool(envelope.inputs):
        raise InputError(
            'expected exactly one of "instances" (a list of rows or of objects keyed by '
            'feature name) or "inputs" (the same, or an object of columns)',
            code="ambiguous_input" if envelope.instances else "missing_features",
        )
    where = "instances" if envelope.instances else "inputs"
    rows = decode_table(bytes(envelope.instances or envelope.inputs), model.schema, where=where)
    return rows_to_query(
        rows,
        model.schema,
        max_rows=settings.max_rows,
        ignore_unknown=settings.unknown_columns == "ignore",
        where=where,
    )


routes = [
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{name}:predict", predict, methods=["POST"]),
    Route("/v1/models/{name}", model_status, methods=["GET"]),
]
