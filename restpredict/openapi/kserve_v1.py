"""The KServe V1 routes (``routes/kserve_v1.py``) as OpenAPI path items."""

from __future__ import annotations

from typing import Any

from restpredict.asgi.responses import JSON
from restpredict.openapi.context import OpenAPIContext, PathItems

__all__ = ["openapi_paths"]


def openapi_paths(api: OpenAPIContext) -> PathItems:
    """The routes above as OpenAPI path items."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"enum": [api.model.name]}}
    tags = ["KServe V1"]
    return {
        "/v1/models": {
            "get": {
                "tags": tags,
                "operationId": "v1ListModels",
                "summary": "List the models served (one)",
                "responses": {
                    "200": api.ok(
                        "The served model's name.",
                        {
                            "type": "object",
                            "properties": {
                                "models": {"type": "array", "items": {"const": api.model.name}}
                            },
                            "required": ["models"],
                        },
                        {"models": [api.model.name]},
                    ),
                    **api.errors([503], "ProtocolError"),
                },
            }
        },
        "/v1/models/{name}": {
            "get": {
                "tags": tags,
                "operationId": "v1ModelStatus",
                "summary": "Model status: ready once loaded and warmed up",
                "parameters": [name],
                "responses": {
                    "200": api.ok(
                        "Ready.",
                        {
                            "type": "object",
                            "properties": {
                                "name": {"const": api.model.name},
                                "ready": {"const": True},
                            },
                            "required": ["name", "ready"],
                        },
                        {"name": api.model.name, "ready": True},
                    ),
                    **api.errors([404, 503], "ProtocolError"),
                },
            }
        },
        "/v1/models/{name}:predict": {"post": _predict_operation(api, name)},
    }


def _predict_operation(api: OpenAPIContext, name: dict[str, Any]) -> dict[str, Any]:
    table = api.table()
    request = {
        "type": "object",
        "properties": {
            "instances": {**table, "description": "Rows, or records keyed by feature name."},
            "inputs": {**table, "description": "The same as instances (TF Serving's name)."},
        },
        "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
    }
    examples = {"rows": {"summary": "Rows", "value": {"instances": [api.example_row()]}}}
    if api.named:
        examples["records"] = {"summary": "Records", "value": {"instances": [api.example_record()]}}
    return {
        "tags": ["KServe V1"],
        "operationId": "v1Predict",
        "summary": "Predict (KServe V1 / TF Serving)",
        "description": (
            "Exactly one of `instances` or `inputs`. `inputs` may also be TF Serving's "
            "columnar object `{name: [values, ...], ...}` of equal-length columns (which JSON "
            "Schema cannot state, so the schema leaves it out). The body is read as JSON "
            "whatever its Content-Type, as KServe does; other fields are ignored."
        ),
        "parameters": [name],
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": request, "examples": examples}},
        },
        "responses": {
            "200": api.predictions_ok(),
            **api.errors([400, 404, 413, 500, 503], "ProtocolError"),
        },
    }
