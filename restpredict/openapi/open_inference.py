"""The Open Inference (V2) routes as OpenAPI path items, typed by the served model.

Kept apart from ``routes/open_inference.py``, as every route module's path items are. The
request schema states the JSON form for one row (``shape`` ``[1, n]``, or ``[1]`` per
column with ``content_type: "pd"``), since JSON Schema cannot tie a shape to the length
of ``data``; the operation's description says what else the server takes, including the
binary tensor data extension, whose header carries a byte count no schema can state.
"""

from __future__ import annotations

from itertools import permutations
from typing import Any

from restpredict.asgi.responses import JSON
from restpredict.codecs.tensors import DATATYPES
from restpredict.openapi.context import OpenAPIContext, PathItems, Schema, ref
from restpredict.routes.open_inference import (
    EXTENSIONS,
    HEADER_LENGTH,
    OCTET_STREAM,
    OUTPUTS,
    model_metadata,
)

__all__ = ["openapi_paths"]

_TAGS = ["Open Inference V2"]
_VERSIONED = "/v2/models/{name}/versions/{version}"
_BINARY = (
    "**Binary tensor data** (what `tritonclient.http` sends by default): the body is the JSON "
    f"request followed by raw tensor bytes, with `{HEADER_LENGTH}` giving the size of the "
    "JSON part; such an input has `parameters.binary_data_size` (its byte count) instead of "
    "`data`. Values are little-endian and row-major; a BYTES element is a 4-byte "
    "little-endian length and its UTF-8 text. Set `parameters.binary_data_output` (or "
    "`binary_data` on one output) to get outputs the same way: the answer is then "
    f"`{OCTET_STREAM}`, the JSON header and the output bytes, with the same header."
)


def openapi_paths(api: OpenAPIContext) -> PathItems:
    """Every V2 route: server health and metadata, model metadata, readiness and infer."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"enum": [api.model.name]}}
    version = {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "restpredict serves one unversioned model, so every version is a 404.",
    }
    server = _object(
        {
            "name": {"const": "restpredict"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"enum": list(EXTENSIONS)}},
        }
    )
    ready = _object({"name": {"const": api.model.name}, "ready": {"const": True}})
    metadata = {**_metadata_schema(api), "examples": [model_metadata(api.model)]}
    return {
        "/v2": _get(api, "v2ServerMetadata", "Server metadata", server, []),
        "/v2/health/live": _get(
            api, "v2ServerLive", "Server live", _object({"live": {"const": True}}), []
        ),
        "/v2/health/ready": _get(
            api, "v2ServerReady", "Server ready", _object({"ready": {"const": True}}), [503]
        ),
        "/v2/models/{name}": _get(
            api, "v2ModelMetadata", "Model metadata", metadata, [404, 503], [name]
        ),
        "/v2/models/{name}/ready": _get(
            api, "v2ModelReady", "Model ready", ready, [404, 503], [name]
        ),
        "/v2/models/{name}/infer": {"post": _infer(api, name)},
        _VERSIONED: {"get": _versioned(api, "v2VersionMetadata", "metadata", [name, version])},
        f"{_VERSIONED}/ready": {
            "get": _versioned(api, "v2VersionReady", "readiness", [name, version])
        },
        f"{_VERSIONED}/infer": {
            "post": _versioned(api, "v2VersionInfer", "inference", [name, version])
        },
    }


def _object(properties: dict[str, Schema]) -> Schema:
    return {"type": "object", "properties": properties, "required": list(properties)}


def _get(
    api: OpenAPIContext,
    operation_id: str,
    summary: str,
    schema: Schema,
    errors: list[int],
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"tags": _TAGS, "operationId": operation_id, "summary": summary}
    if parameters:
        operation["parameters"] = parameters
    operation["responses"] = {
        "200": api.ok(f"{summary}.", schema),
        **api.errors(errors, "ProtocolError"),
    }
    return {"get": operation}


def _versioned(
    api: OpenAPIContext, operation_id: str, what: str, parameters: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "tags": _TAGS,
        "operationId": operation_id,
        "summary": f"Versioned model {what}: always 404",
        "description": "The spec's versioned paths. restpredict serves one unversioned model, "
        "so these answer 404 naming the unversioned path (503 before the model is ready).",
        "parameters": parameters,
        "responses": api.errors([404, 503], "ProtocolError"),
    }


def _metadata_schema(api: OpenAPIContext) -> Schema:
    tensor = _object(
        {
            "name": {"type": "string"},
            "datatype": {"enum": list(DATATYPES)},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": -1}},
        }
    )
    return {
        "type": "object",
        "properties": {
            "name": {"const": api.model.name},
            "platform": {"const": "sklearn"},
            "inputs": {"type": "array", "items": tensor},
            "outputs": {"type": "array", "items": tensor},
            "parameters": {"type": "object"},
            "properties": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "required": ["name", "platform", "inputs", "outputs"],
    }


def _infer(api: OpenAPIContext, name: dict[str, Any]) -> dict[str, Any]:
    return {
        "tags": _TAGS,
        "operationId": "v2Infer",
        "summary": "Infer: tensors in, predict and predict_proba out",
        "description": (
            "JSON tensors, nested or flat, row-major. "
            + (
                'One input per feature column, named as the column, with `parameters: {"content_'
                'type": "pd"}`; '
                if api.named
                else "One input of shape `[rows, features]`; "
            )
            + "the schema shows one row, but `shape` may name any number of rows (or `[rows, 1]` "
            "per column), and numeric columns may be any numeric datatype (INT64, FP32...). "
            "Without `outputs`, every output is returned. `id` is echoed.\n\n" + _BINARY
        ),
        "parameters": [name],
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": _infer_request(api),
                    "examples": {"one row": {"value": _infer_example(api)}},
                }
            },
        },
        "responses": {
            "200": {
                "description": "The outputs asked for: JSON, or binary tensor data after a JSON "
                "header when binary outputs were asked for.",
                "headers": {
                    "X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"},
                    HEADER_LENGTH: {
                        "description": "Binary answers only: the size of the JSON header.",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                },
                "content": {
                    JSON: {"schema": _infer_response(api)},
                    OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}},
                },
            },
            **api.errors([400, 404, 413, 415, 500, 503], "ProtocolError"),
        },
    }


def _infer_request(api: OpenAPIContext) -> Schema:
    if api.named:
        inputs: Schema = {
            "type": "array",
            "prefixItems": [_column_tensor(api, column, kind) for column, kind in api.columns()],
            "items": False,
            "minItems": len(api.columns()),
        }
        parameters: Schema = {
            "type": "object",
            "properties": {"content_type": {"const": "pd"}, "binary_data_output": _BOOL},
            "required": ["content_type"],
        }
        required = ["inputs", "parameters"]
    else:
        inputs = {
            "type": "array",
            "prefixItems": [_rows_tensor(api)],
            "items": False,
            "minItems": 1,
        }
        parameters = {
            "type": "object",
            "properties": {"content_type": {"enum": ["np", None]}, "binary_data_output": _BOOL},
        }
        required = ["inputs"]
    return {
        "type": "object",
        "properties": {
            "id": {"type": ["string", "null"]},
            "parameters": parameters,
            "inputs": inputs,
            "outputs": _outputs(api),
        },
        "required": required,
    }


_BOOL: Schema = {"type": "boolean"}
# An input's parameters, except binary_data_size (the binary extension, in prose).
_INPUT_PARAMETERS: Schema = {
    "type": "object",
    "propertyNames": {"not": {"const": "binary_data_size"}},
}


def _rows_tensor(api: OpenAPIContext) -> Schema:
    n = api.model.schema.n_features
    width: Schema = {"const": n} if n is not None else {"type": "integer", "minimum": 1}
    return {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "shape": {
                "type": "array",
                "prefixItems": [{"const": 1}, width],
                "items": False,
                "minItems": 2,
            },
            "datatype": {"const": "FP64"},
            "parameters": _INPUT_PARAMETERS,
            "data": {"oneOf": [ref("Row"), {**api.many(ref("Row")), "maxItems": 1}]},
        },
        "required": ["name", "shape", "datatype", "data"],
    }


def _column_tensor(api: OpenAPIContext, column: str, kind: str) -> Schema:
    value = api.value(column, "number" if kind == "number" else "string")
    return {
        "type": "object",
        "properties": {
            "name": {"const": column},
            "shape": {"const": [1]},
            "datatype": {"const": "FP64" if kind == "number" else "BYTES"},
            "parameters": _INPUT_PARAMETERS,
            "data": {  # one element: a list of it, or (as the server allows) the value alone
                "oneOf": [{"type": "array", "items": value, "minItems": 1, "maxItems": 1}, value]
            },
        },
        "required": ["name", "shape", "datatype", "data"],
    }


def _outputs(api: OpenAPIContext) -> Schema:
    available = [name for name in OUTPUTS if name != "predict_proba" or api.model.schema.has_proba]
    choices = [
        combo for size in range(1, len(available) + 1) for combo in permutations(available, size)
    ]
    output_parameters = {
        "type": "object",
        "properties": {"binary_data": _BOOL},
        "propertyNames": {"not": {"const": "classification"}},
    }
    return {
        "description": "Outputs to return (each at most once); none or null means all.",
        "anyOf": [
            {"type": "null"},
            {"type": "array", "maxItems": 0},
            *(
                {
                    "type": "array",
                    "prefixItems": [
                        {
                            "type": "object",
                            "properties": {
                                "name": {"const": name},
                                "parameters": output_parameters,
                            },
                            "required": ["name"],
                        }
                        for name in combo
                    ],
                    "items": False,
                    "minItems": len(combo),
                }
                for combo in choices
            ),
        ],
    }


def _infer_response(api: OpenAPIContext) -> Schema:
    binary_size = {
        "type": "object",
        "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
    }
    shape = {"type": "array", "items": {"type": "integer", "minimum": 0}}
    predict = {
        "type": "object",
        "properties": {
            "name": {"const": "predict"},
            "datatype": {"enum": list(DATATYPES)},
            "shape": {**shape, "minItems": 1},
            "data": {"type": "array", "items": ref("Label")},
            "parameters": binary_size,
        },
        "required": ["name", "datatype", "shape"],
    }
    tensors = [predict]
    classes = api.model.schema.classes
    if api.model.schema.has_proba:
        width = f"[rows, {len(classes) if classes is not None else 'classes'}]"
        tensors.append(
            {
                "type": "object",
                "properties": {
                    "name": {"const": "predict_proba"},
                    "datatype": {"enum": ["FP16", "FP32", "FP64"]},
                    "shape": {**shape, "minItems": 2, "maxItems": 2, "description": width},
                    "data": {
                        "type": "array",
                        "items": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                    "parameters": binary_size,
                },
                "required": ["name", "datatype", "shape"],
            }
        )
    return {
        "type": "object",
        "properties": {
            "model_name": {"const": api.model.name},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": {"oneOf": tensors}},
        },
        "required": ["model_name", "outputs"],
    }


def _infer_example(api: OpenAPIContext) -> dict[str, Any]:
    if api.named:
        inputs = [
            {
                "name": column,
                "shape": [1],
                "datatype": "FP64" if kind == "number" else "BYTES",
                "data": [value],
            }
            for (column, kind), value in zip(api.columns(), api.example_row())
        ]
        return {"parameters": {"content_type": "pd"}, "inputs": inputs}
    row = api.example_row()
    return {
        "inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": "FP64", "data": row}]
    }
