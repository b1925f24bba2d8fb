"""``POST /admin/reload`` (``routes/admin.py``) as an OpenAPI path item."""

from __future__ import annotations

from typing import Any

from restpredict.openapi.context import OpenAPIContext, PathItems

__all__ = ["openapi_paths"]


def openapi_paths(api: OpenAPIContext) -> PathItems:
    """``POST /admin/reload`` as an OpenAPI path item, when the server has the route."""
    if api.settings.api_key is None:
        return {}
    sha256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
    if api.settings.several_models:
        answers = {"200": _several_models_answer(api)}
        refusal = (
            "Several models: the configuration read again names a version that is not "
            "configured, or cannot be read; or the body pins a file (load one model with the "
            "repository API instead). Traffic and shadows stay as they were."
        )
    elif api.settings.workers > 1:
        rolling = _object(status={"const": "rolling"}, sha256=sha256, model={"type": "string"})
        answer = api.ok(
            "Several workers: the supervisor loaded, verified and warmed the new model once "
            "and is rolling the workers onto it, one by one (`sha256`: the new model's).",
            rolling,
            {"status": "rolling", "sha256": api.model.sha256, "model": api.model.name},
        )
        answers = {"202": answer}
        refusal = (
            "The supervisor refused the file: it failed to load, its pin, its version check or "
            "its warm-up, or its schema differs from the serving model's (without "
            "`allow_schema_change`); every worker keeps serving the old model."
        )
    else:
        reloaded = _object(status={"const": "reloaded"}, sha256=sha256, model={"type": "string"})
        answers = {"200": api.ok("The new model is verified, warmed up and serving.", reloaded)}
        refusal = (
            "The file failed to load, its pin, its version check or its warm-up, or its "
            "schema differs from the serving model's (without `allow_schema_change`)."
        )
    allow = {
        "type": "boolean",
        "default": False,
        "description": "Accept a model whose inputs or outputs differ from the serving one's.",
    }
    body = {
        "type": "object",
        "properties": {"sha256": sha256, "allow_schema_change": allow},
        "additionalProperties": False,
    }
    return {
        "/admin/reload": {
            "post": {
                "tags": ["operations"],
                "operationId": "reload",
                "summary": "Hot reload: re-read the configured model file and swap it in",
                "description": (
                    "Only on a server with an API key. The configured file is loaded, verified "
                    "(SHA-256 pin, scikit-learn version) and warmed up off the event loop, then "
                    "swapped in: no request sees a half-loaded model. An empty body keeps the "
                    "current pin; `sha256` pins the new file's hash (upper case and surrounding "
                    "whitespace are accepted too). The Content-Type is not checked."
                ),
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": body,
                            "example": {"sha256": api.model.sha256},
                        }
                    },
                },
                "responses": {
                    **answers,
                    "400": api.problem("The body is not parseable JSON."),
                    "409": api.problem(f"Refused; the old model keeps serving. {refusal}"),
                    "422": api.problem('JSON, but not `{"sha256": "<64 hex digits>"}`.'),
                },
            }
        }
    }


def _several_models_answer(api: OpenAPIContext) -> dict[str, Any]:
    what = (
        "Several models: the configuration was read again and its `traffic`, `shadow` and "
        "`shadow_tolerance` apply to every later request"
    )
    if api.settings.workers > 1:
        answered = _object(status={"const": "reloaded"}, detail={"type": "string"})
        return api.ok(f"{what}, in every worker (they were rolled onto them).", answered)
    weights = {"type": "object", "additionalProperties": {"type": "number"}}
    answered = _object(
        status={"const": "reloaded"},
        traffic={"type": "object", "additionalProperties": weights},
        shadow={"type": "object", "additionalProperties": {"type": "string"}},
    )
    return api.ok(f"{what}.", answered)


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON object with exactly these properties, all required."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
