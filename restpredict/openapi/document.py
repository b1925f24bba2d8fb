"""The OpenAPI 3.1 document of the running app, built from the loaded model. No HTTP here.

``openapi_document(model, settings)`` gathers the path items of every route module (one
``openapi`` module each: ``core``, ``kserve_v1``, ``open_inference``, ``repository``,
``mlflow``, ``admin``),
the shared components, and what the protective middleware answers on every route (401, 408,
503, 504) and the security scheme (``protection``).

Adding a route: write its path items in the ``openapi`` module matching its route module and
merge them in ``openapi_document``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from restpredict._version import __version__
from restpredict.model.loading import LoadedModel
from restpredict.openapi import (
    admin,
    core,
    kserve_v1,
    mlflow,
    open_inference,
    protection,
    repository,
)
from restpredict.openapi.context import OPENAPI_VERSION, OpenAPIContext, Schema
from restpredict.openapi.models import model_sections
from restpredict.settings import Settings

__all__ = ["openapi_document"]

_METHOD_NOT_ALLOWED = (
    "Every path answers 405 with an `Allow` header for methods not listed here, and "
    "unknown paths answer 404."
)


def openapi_document(
    model: LoadedModel, settings: Settings, several: Sequence[LoadedModel] = ()
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route the app serves (the docs page aside).

    ``several``: with several models, each one's ``/models/{name}/`` section (``model``, the
    default or the first, describes the nameless and protocol routes).
    """
    api = OpenAPIContext.of(model, settings)
    paths = {
        **core.openapi_paths(api),
        **kserve_v1.openapi_paths(api),
        **open_inference.openapi_paths(api),
        **repository.openapi_paths(api),
        **mlflow.openapi_paths(api),
        **admin.openapi_paths(api),
    }
    components = _components(api)
    if several:
        paths.update(model_sections(several, settings, components["schemas"], _components))
    for key, value in protection.components(api).items():
        components[key] = {**components.get(key, {}), **value}
    return {
        "openapi": OPENAPI_VERSION,
        "info": _info(api),
        "tags": [
            {"name": "restpredict", "description": "Predictions and model metadata."},
            {"name": "operations", "description": "Health, metrics and this document."},
            *_protocol_tags(),
        ],
        "paths": protection.protect(api, paths),
        "components": components,
    }


def _info(api: OpenAPIContext) -> dict[str, Any]:
    s = api.model.schema
    features = (
        ", ".join(
            f"`{name}` ({kind}{', nullable' if name in api.nullable else ''})"
            for name, kind in api.columns()
        )
        or "unknown"
    )
    classes = ", ".join(f"`{c}`" for c in s.classes) if s.classes is not None else "none"
    return {
        "title": f"restpredict: {api.model.name}",
        "version": __version__,
        "summary": f"Predictions from {s.estimator} over HTTP.",
        "description": (
            f"Serves `{api.model.name}`, a {s.estimator} ({s.task}), SHA-256 "
            f"`{api.model.sha256}`.\n\n"
            f"**Features** ({s.n_features if s.n_features is not None else 'any number'}): "
            f"{features}.\n\n**Classes**: {classes}.\n\n"
            f"At most {api.settings.max_rows} rows and {api.settings.max_body_bytes} bytes "
            "per request. Every response carries `X-Request-ID` (the client's, if it sent a "
            f"valid one). {_METHOD_NOT_ALLOWED}"
        ),
        "license": {"name": "MIT", "identifier": "MIT"},
    }


def _protocol_tags() -> list[dict[str, str]]:
    return [
        {"name": "KServe V1", "description": "KServe V1 / TensorFlow Serving REST."},
        {"name": "Open Inference V2", "description": "Open Inference Protocol (KServe V2)."},
        {"name": "MLflow", "description": "MLflow's scoring protocol."},
    ]


def _components(api: OpenAPIContext) -> dict[str, Any]:
    schemas: dict[str, Schema] = {
        "Row": {**api.row(), "description": "One row of feature values, in the model's order."},
        "Label": api.label(),
        "Probabilities": api.probabilities(),
        "Problem": _problem_schema(),
        "ProtocolError": {
            "type": "object",
            "properties": {"error": {"type": "string"}},
            "required": ["error"],
            "description": "The error body of KServe V1 and Open Inference V2.",
        },
        "MLflowError": {
            "type": "object",
            "properties": {
                "error_code": {
                    "enum": [
                        "BAD_REQUEST",
                        "RESOURCE_DOES_NOT_EXIST",
                        "TEMPORARILY_UNAVAILABLE",
                        "INTERNAL_ERROR",
                    ]
                },
                "message": {"type": "string"},
            },
            "required": ["error_code", "message"],
            "description": "MLflow's error body (without its stack trace).",
        },
    }
    if api.named:
        schemas["Record"] = {**api.record(), "description": "One row keyed by feature name."}
    return {
        "schemas": schemas,
        "headers": {
            "X-Request-ID": {
                "description": "The request id: the client's `X-Request-ID` if it was valid "
                "(1-128 of `A-Za-z0-9._:@/+=-`), else a new one.",
                "required": True,
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:@/+=-]{1,128}$"},
            }
        },
    }


def _problem_schema() -> Schema:
    return {
        "type": "object",
        "description": "RFC 9457 problem details, with a stable machine-readable `code`.",
        "properties": {
            "type": {"type": "string", "pattern": "^urn:restpredict:problem:"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "code": {"type": "string"},
        },
        "required": ["type", "title", "status", "detail", "code"],
    }
