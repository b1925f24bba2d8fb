"""The V2 model repository extension (``routes/repository.py``) as OpenAPI path items.

Present only when the routes are (``repository_api``, or a ``model_dir``). Errors have the
protocols' ``{"error": ...}`` body, as Triton's and MLServer's do.
"""

from __future__ import annotations

from typing import Any

from restpredict.asgi.registry import LOADING, READY, UNAVAILABLE, UNLOADING
from restpredict.openapi.context import OpenAPIContext, PathItems, ref, response_headers
from restpredict.routes.repository import repository_enabled

__all__ = ["openapi_paths"]

_TAGS = ["Open Inference V2"]
_LOADED = (
    "Every configured version of `name` (from `models:` or the model folder, never a path "
    "from the request) is loaded, pin-checked, verified and warmed up, and serves only then. "
    "With several workers the supervisor loads it once and rolls every worker onto it; the "
    "answer comes once they all serve it."
)
_UNLOADED = (
    "New requests for `name` get 404 at once; the requests already on it are answered, then "
    "its memory is freed. With several workers, every worker is rolled onto the models "
    "without it; the answer comes once none takes new connections with it."
)


def openapi_paths(api: OpenAPIContext) -> PathItems:
    """``POST /v2/repository/index``, ``.../models/{name}/load`` and ``/unload``, when on."""
    if not repository_enabled(api.settings):
        return {}
    entry = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "state": {"enum": [READY, LOADING, UNLOADING, UNAVAILABLE]},
            "reason": {"type": "string"},
        },
        "required": ["name", "state", "reason"],
        "additionalProperties": False,
    }
    asked = {
        "type": "object",
        "properties": {"ready": {"type": "boolean", "default": False}},
    }
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    empty = {"type": "object", "maxProperties": 0}
    return {
        "/v2/repository/index": {
            "post": _operation(
                api,
                "v2RepositoryIndex",
                "Repository index: every configured model and version, with its state",
                '`{"ready": true}` lists only the ready ones. The model folder is read '
                "again, so a model copied into it later is listed (and can be loaded).",
                asked,
                {"type": "array", "items": entry},
                {400: 'The body is not `{"ready": bool}`.'},
            )
        },
        "/v2/repository/models/{name}/load": {
            "post": _operation(
                api,
                "v2RepositoryLoad",
                "Load (or reload) a configured model",
                _LOADED,
                {"type": "object", "properties": {"parameters": empty}},
                empty,
                {
                    400: "Malformed JSON, or load `parameters` (a model loads from its "
                    "configured source only).",
                    404: "No configured model has this name.",
                    409: "A version failed to load, verify or warm up (what served before "
                    "keeps serving), or this server serves one model (MODEL).",
                    503: "Several workers: some could not start with the new models; they "
                    "serve the previous ones and are retried.",
                },
                [name],
            )
        },
        "/v2/repository/models/{name}/unload": {
            "post": _operation(
                api,
                "v2RepositoryUnload",
                "Unload a model, draining its requests in flight",
                _UNLOADED,
                {"type": "object", "properties": {"parameters": {"type": "object"}}},
                empty,
                {
                    400: "Malformed JSON.",
                    404: "The model is not loaded.",
                    409: "This server serves one model (MODEL).",
                    503: "Several workers: some could not start without the model; they "
                    "serve the previous models and are retried.",
                },
                [name],
            )
        },
    }


def _operation(
    api: OpenAPIContext,
    operation_id: str,
    summary: str,
    description: str,
    body: dict[str, Any],
    answer: dict[str, Any],
    errors: dict[int, str],
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": _TAGS,
        "operationId": operation_id,
        "summary": summary,
        "description": description,
    }
    if parameters:
        operation["parameters"] = parameters
    operation["requestBody"] = {
        "required": False,
        "content": {"application/json": {"schema": body}},
    }
    operation["responses"] = {
        "200": api.ok(f"{summary}.", answer),
        **{
            str(status): {
                "description": words,
                "headers": response_headers(),
                "content": {"application/json": {"schema": ref("ProtocolError")}},
            }
            for status, words in {
                **errors,
                413: "The body is larger than `max_body_bytes`.",
            }.items()
        },
    }
    return operation
