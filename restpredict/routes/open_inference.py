"""Open Inference Protocol (V2) REST: health, metadata and ``infer`` of each model served.

Follows the KServe/OIP ``inference_rest.md`` spec, MLServer's scikit-learn conventions
(outputs ``predict`` and ``predict_proba``; ``parameters.content_type: "pd"`` for one input
per DataFrame column) and Triton's binary tensor data extension, so ``tritonclient.http``
works with its defaults. Tensors become rows for ``codecs.payload.rows_to_query``, the validation
``/predict`` uses, and are predicted through ``asgi.query.run_query``. Errors are ``{"error": ...}``
with the spec's statuses: 400 for invalid input, 404 for another model's name, 503 before
the model is ready.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from restpredict._version import __version__
from restpredict.asgi.body import read_body
from restpredict.asgi.fleet import degraded_headers, fleet_status
from restpredict.asgi.query import run_query
from restpredict.asgi.registry import ModelRegistry
from restpredict.asgi.responses import JSONResponse
from restpredict.asgi.state import current_model
from restpredict.codecs import tensors
from restpredict.codecs.payload import Row, decode_json, rows_to_query
from restpredict.errors import (
    InputError,
    NotReadyError,
    RestPredictError,
    UnsupportedMediaTypeError,
)
from restpredict.model.loading import LoadedModel, Prediction
from restpredict.model.schema import ModelSchema
from restpredict.observability.exchange import timed
from restpredict.routes.protocol import client_status, endpoint, served_model
from restpredict.settings import Settings

__all__ = [
    "EXTENSIONS",
    "HEADER_LENGTH",
    "OCTET_STREAM",
    "OUTPUTS",
    "model_metadata",
    "routes",
]

HEADER_LENGTH = "Inference-Header-Content-Length"
EXTENSIONS = ("binary_tensor_data",)
OUTPUTS = ("predict", "predict_proba")
PLATFORM = "sklearn"
OCTET_STREAM = "application/octet-stream"


class _Input(msgspec.Struct):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    data: Any = None


class _Output(msgspec.Struct):
    name: str
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)


class _InferRequest(msgspec.Struct):
    inputs: list[_Input]
    id: str | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    outputs: list[_Output] | None = None


def _render(error: RestPredictError) -> Response:
    return JSONResponse({"error": error.detail}, status_code=client_status(error))


@endpoint(_render)
async def server_metadata(request: Request) -> Response:
    """``GET /v2``: name, version and the extensions this server implements."""
    return JSONResponse(
        {"name": "restpredict", "version": __version__, "extensions": list(EXTENSIONS)}
    )


@endpoint(_render)
async def server_live(request: Request) -> Response:
    """``GET /v2/health/live``: the process answers."""
    return JSONResponse({"live": True})


@endpoint(_render)
async def server_ready(request: Request) -> Response:
    """``GET /v2/health/ready``: 200 once every model is loaded and warmed up, 503 before;
    ``X-Degraded`` while fewer workers serve than wanted."""
    registry: ModelRegistry = request.app.state.registry
    names = registry.names()
    current_model(request, names[0] if names else None)
    if not registry.all_ready():
        raise NotReadyError("not every configured model is ready yet")
    fleet = fleet_status(request.app.state.serving.fleet_dir)
    return JSONResponse({"ready": True}, headers=degraded_headers(fleet))


@endpoint(_render)
async def model_ready(request: Request) -> Response:
    """``GET /v2/models/{name}/ready``."""
    model = _model(request)
    return JSONResponse({"name": model.name, "ready": True})


@endpoint(_render)
async def model_metadata_endpoint(request: Request) -> Response:
    """``GET /v2/models/{name}``: inputs and outputs derived from the estimator."""
    return JSONResponse(model_metadata(_model(request)))


@endpoint(_render)
async def infer(request: Request) -> Response:
    """``POST /v2/models/{name}/infer``: tensors in, ``predict`` and ``predict_proba`` out."""
    model = _model(request)
    settings: Settings = request.app.state.settings
    body = await _read_infer_body(request, settings.max_body_bytes)
    with timed(request.scope, "decode"):
        header, binary = tensors.split_body(body, request.headers.get(HEADER_LENGTH))
        infer_request: _InferRequest = decode_json(header, _InferRequest)
        wanted = _requested_outputs(infer_request, model.schema)
        arrays = _input_arrays(infer_request.inputs, binary)
        query = rows_to_query(
            _rows(infer_request, arrays, model.schema),
            model.schema,
            max_rows=settings.max_rows,
            ignore_unknown=settings.unknown_columns == "ignore",
            labels="predict" in wanted,
            proba="predict_proba" in wanted,
            where="inputs",
        )
    prediction = await run_query(request, model, query)
    return _response(model, infer_request.id, wanted, prediction)


def model_metadata(model: LoadedModel) -> dict[str, Any]:
    """The V2 model metadata document: names, datatypes and shapes (-1 = any) of each tensor."""
    s = model.schema
    doc: dict[str, Any] = {
        "name": model.name,
        **({"versions": [model.version]} if model.version is not None else {}),
        "platform": PLATFORM,
        "inputs": _input_metadata(s),
        "outputs": [
            {"name": "predict", "datatype": _label_datatype(s), "shape": [-1]},
        ],
    }
    if s.has_proba:
        width = len(s.classes) if s.classes is not None else -1
        doc["outputs"].append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, width]})
    if s.feature_names is not None:
        doc["parameters"] = {"content_type": "pd"}
    doc["properties"] = {
        "estimator": s.estimator,
        "task": s.task,
        "sha256": model.sha256,
        "sklearn_version": model.sklearn_running,
    }
    return doc


def _input_metadata(s: ModelSchema) -> list[dict[str, Any]]:
    if s.feature_names is not None:
        kinds = s.feature_kinds or ("number",) * len(s.feature_names)
        return [
            {"name": name, "datatype": "FP64" if kind == "number" else "BYTES", "shape": [-1]}
            for name, kind in zip(s.feature_names, kinds)
        ]
    width = s.n_features if s.n_features is not None else -1
    return [{"name": "input-0", "datatype": "FP64", "shape": [-1, width]}]


def _label_datatype(s: ModelSchema) -> str:
    if s.task == "regression":
        return "FP64"
    if s.classes is None:
        return "INT64"  # cluster ids, outlier flags
    if all(isinstance(c, bool) for c in s.classes):
        return "BOOL"
    if all(isinstance(c, int) and not isinstance(c, bool) for c in s.classes):
        return "INT64"
    if all(isinstance(c, float) for c in s.classes):
        return "FP64"
    return "BYTES"


def _model(request: Request) -> LoadedModel:
    return served_model(request, request.path_params["name"], request.path_params.get("version"))


async def _read_infer_body(request: Request, limit: int) -> bytes:
    """The body, size-limited; Content-Type is not checked (KServe and Triton do not either):
    the ``Inference-Header-Content-Length`` header alone says whether binary data follows."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {encoding!r} is not supported; send the body uncompressed"
        )
    return await read_body(request, limit)


def _requested_outputs(request: _InferRequest, schema: ModelSchema) -> dict[str, bool]:
    """Output name -> whether to send it as binary data, in the order asked for."""
    default = _flag(request.parameters, "binary_data_output", "parameters")
    available = [name for name in OUTPUTS if name != "predict_proba" or schema.has_proba]
    if not request.outputs:  # the spec: no outputs named means all of them
        return dict.fromkeys(available, default)
    wanted: dict[str, bool] = {}
    for output in request.outputs:
        if output.name not in OUTPUTS:
            raise InputError(
                f"unknown output {output.name!r}; this model has: {', '.join(available)}",
                code="unknown_output",
            )
        if output.name not in available:
            raise InputError(
                f"output 'predict_proba' is not available: {schema.estimator} has no predict_proba",
                code="proba_unavailable",
            )
        if output.name in wanted:
            raise InputError(f"output {output.name!r} is asked for twice", code="invalid_input")
        if "classification" in output.parameters:
            raise InputError(
                "the classification extension is not supported; ask for 'predict_proba'",
                code="unsupported_parameter",
            )
        where = f"outputs[{output.name}].parameters"
        flag = _flag(output.parameters, "binary_data", where)
        wanted[output.name] = flag if "binary_data" in output.parameters else default
    return wanted


def _flag(parameters: dict[str, Any], key: str, where: str) -> bool:
    value = parameters.get(key, False)
    if not isinstance(value, bool):
        raise InputError(f"{where}.{key} must be true or false, got {value!r}")
    return value


def _input_arrays(inputs: list[_Input], binary: bytes) -> list[np.ndarray]:
    sizes: list[int] = []
    for tensor in inputs:
        size = tensor.parameters.get("binary_data_size")
        if size is None:
            continue
        if type(size) is not int or size < 0:
            raise InputError(
                f"input {tensor.name!r}: binary_data_size must be a byte count, got {size!r}"
            )
        if tensor.data is not None:
            raise InputError(f"input {tensor.name!r} has both data and binary_data_size")
        sizes.append(size)
    pieces = iter(tensors.split_binary(binary, sizes))
    arrays = []
    for tensor in inputs:
        if "binary_data_size" in tensor.parameters:
            array = tensors.from_binary(tensor.name, tensor.datatype, tensor.shape, next(pieces))
        elif tensor.data is None:
            raise InputError(f"input {tensor.name!r} has no data", code="empty_input")
        else:
            array = tensors.from_json(tensor.name, tensor.datatype, tensor.shape, tensor.data)
        arrays.append(_model_values(tensor.name, array))
    return arrays


def _model_values(name: str, array: np.ndarray) -> np.ndarray:
    """BOOL becomes 0/1 (the model's features are numbers or text); infinity is refused.

    NaN (binary data) or null (JSON) is a missing value, which the row validation takes
    or refuses by the model's schema, as for every protocol.
    """
    if array.dtype.kind == "b":
        return array.astype(np.float64)
    if array.dtype.kind == "f" and np.isinf(array).any():
        raise InputError(
            f"input {name!r} holds infinity, which the model cannot take",
            code="non_finite_input",
        )
    return array


def _rows(request: _InferRequest, arrays: list[np.ndarray], schema: ModelSchema) -> list[Row]:
    content_type = request.parameters.get("content_type")
    if content_type == "pd":
        return _columns(request.inputs, arrays)
    if content_type not in (None, "np"):
        raise InputError(
            f"parameters.content_type {content_type!r} is not supported; use 'np' (one "
            "[rows, features] input) or 'pd' (one input per DataFrame column)",
            code="unsupported_parameter",
        )
    width = schema.n_features if schema.n_features is not None else "features"
    if len(arrays) != 1:
        raise InputError(
            f"expected one input of shape [rows, {width}], got {len(arrays)} inputs; "
            "to send one input per column, set parameters.content_type to 'pd'",
            code="invalid_shape",
        )
    if arrays[0].ndim != 2:
        raise InputError(
            f"input {request.inputs[0].name!r} has shape {request.inputs[0].shape}; "
            f"expected [rows, {width}]",
            code="invalid_shape",
        )
    rows: list[Row] = arrays[0].tolist()
    return rows


def _columns(inputs: list[_Input], arrays: list[np.ndarray]) -> list[Row]:
    """``content_type: "pd"``: each input is one DataFrame column, named by its input name."""
    if not inputs:
        raise InputError("no inputs; expected one per column", code="empty_input")
    columns: dict[str, list[Any]] = {}
    for tensor, array in zip(inputs, arrays):
        if array.ndim not in (1, 2) or (array.ndim == 2 and array.shape[1] != 1):
            raise InputError(
                f"input {tensor.name!r} has shape {tensor.shape}; a column is [rows] or [rows, 1]",
                code="invalid_shape",
            )
        if tensor.name in columns:
            raise InputError(f"column {tensor.name!r} is given twice", code="invalid_input")
        columns[tensor.name] = array.reshape(-1).tolist()
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise InputError(
            f"columns have different lengths ({', '.join(map(str, sorted(lengths)))})",
            code="ragged_rows",
        )
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*columns.values())]


def _response(
    model: LoadedModel, request_id: str | None, wanted: dict[str, bool], prediction: Prediction
) -> Response:
    outputs, blobs = [], []
    for name, binary in wanted.items():
        array = prediction.labels if name == "predict" else prediction.proba
        assert array is not None  # the query asked for it
        datatype = tensors.datatype_of(array)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary:
            blob = tensors.to_binary(array, datatype)
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = tensors.to_json(array)
        outputs.append(tensor)
    doc: dict[str, Any] = {"model_name": model.name}
    if model.version is not None:
        doc["model_version"] = model.version
    if request_id is not None:
        doc["id"] = request_id
    doc["outputs"] = outputs
    if not blobs:
        return JSONResponse(doc)
    header = msgspec.json.encode(doc)
    return Response(
        header + b"".join(blobs),
        media_type=OCTET_STREAM,
        headers={HEADER_LENGTH: str(len(header))},
    )


_VERSIONED = "/v2/models/{name}/versions/{version}"
routes = [
    Route("/v2", server_metadata, methods=["GET"]),
    Route("/v2/health/live", server_live, methods=["GET"]),
    Route("/v2/health/ready", server_ready, methods=["GET"]),
    Route("/v2/models/{name}", model_metadata_endpoint, methods=["GET"]),
    Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
    Route("/v2/models/{name}/infer", infer, methods=["POST"]),
    Route(_VERSIONED, model_metadata_endpoint, methods=["GET"]),
    Route(f"{_VERSIONED}/ready", model_ready, methods=["GET"]),
    Route(f"{_VERSIONED}/infer", infer, methods=["POST"]),
]
