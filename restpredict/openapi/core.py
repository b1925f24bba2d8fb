"""The core routes (``/predict``, health, ``/metadata``, ``/metrics``) and ``/openapi.json``
as OpenAPI path items."""

from __future__ import annotations

from typing import Any

from restpredict._version import __version__
from restpredict.asgi.responses import JSON, PROBLEM_JSON
from restpredict.openapi.context import (
    OPENAPI_VERSION,
    OpenAPIContext,
    PathItems,
    Schema,
    ref,
    response_headers,
)

__all__ = ["openapi_paths"]


def openapi_paths(api: OpenAPIContext) -> PathItems:
    """The core routes (``routes/core.py``) and ``/openapi.json`` as OpenAPI path items."""
    return {
        "/predict": {"post": _predict(api)},
        "/health/live": {
            "get": {
                "tags": ["operations"],
                "operationId": "live",
                "summary": "Liveness: the process answers",
                "responses": {
                    "200": api.ok("Live.", _status_schema("live"), {"status": "live"}),
                },
            }
        },
        "/health/ready": {
            "get": {
                "tags": ["operations"],
                "operationId": "ready",
                "summary": "Readiness: the model is loaded and warmed up",
                "responses": {
                    "200": api.ok(
                        "Ready.",
                        {
                            **_status_schema("ready"),
                            "properties": {
                                "status": {"const": "ready"},
                                "model": {"const": api.model.name},
                            },
                            "required": ["status", "model"],
                        },
                        {"status": "ready", "model": api.model.name},
                    ),
                    **api.errors([503], "Problem", PROBLEM_JSON),
                },
            }
        },
        "/metadata": {
            "get": {
                "tags": ["restpredict"],
                "operationId": "metadata",
                "summary": "What is served: file, hash, schema, versions",
                "responses": {
                    "200": api.ok("The model's metadata.", _metadata_schema(api)),
                    **api.errors([503], "Problem", PROBLEM_JSON),
                },
            }
        },
        "/metrics": {
            "get": {
                "tags": ["operations"],
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "description": "Prometheus text format, or OpenMetrics when the scraper's "
                "`Accept` asks for `application/openmetrics-text`.",
                "responses": {
                    "200": {
                        "description": "The metrics.",
                        "headers": response_headers(),
                        "content": {
                            "text/plain": {"schema": {"type": "string"}},
                            "application/openmetrics-text": {"schema": {"type": "string"}},
                        },
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "tags": ["operations"],
                "operationId": "openapi",
                "summary": "This document (the page at /docs renders it)",
                "responses": {
                    "200": api.ok(
                        "The OpenAPI 3.1 document.",
                        {
                            "type": "object",
                            "properties": {"openapi": {"const": OPENAPI_VERSION}},
                            "required": ["openapi", "info", "paths"],
                        },
                    ),
                    **api.errors([503], "Problem", PROBLEM_JSON),
                },
            }
        },
    }


def _status_schema(status: str) -> Schema:
    return {
        "type": "object",
        "properties": {"status": {"const": status}},
        "required": ["status"],
    }


def _predict(api: OpenAPIContext) -> dict[str, Any]:
    s = api.model.schema
    outputs = ["label", "proba"] if s.has_proba else ["label"]
    properties: dict[str, Schema] = {
        "features": {
            "description": "One row, or a list of rows, of values in the model's feature order.",
            "oneOf": [ref("Row"), api.many(ref("Row"))],
        },
        "return": {
            "description": "What to return: labels, probabilities (if the model has them).",
            "type": "array",
            "items": {"enum": outputs},
            "minItems": 1,
            "default": ["label"],
        },
    }
    examples: dict[str, Any] = {
        "features": {"summary": "One row", "value": {"features": api.example_row()}},
    }
    if s.has_proba:
        examples["proba"] = {
            "summary": "Labels and probabilities",
            "value": {"features": [api.example_row()], "return": ["label", "proba"]},
        }
    one_of = [{"required": ["features"]}]
    if api.named:
        properties["instances"] = {
            "description": "Rows keyed by feature name.",
            **api.many(ref("Record")),
        }
        examples["instances"] = {
            "summary": "Named instances",
            "value": {"instances": [api.example_record()]},
        }
        one_of.append({"required": ["instances"]})
    request = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "oneOf": one_of,
    }
    response: Schema = {
        "type": "object",
        "properties": {
            "predictions": {"type": "array", "items": ref("Label")},
            "probabilities": {"type": "array", "items": ref("Probabilities")},
        },
        "additionalProperties": False,
    }
    return {
        "tags": ["restpredict"],
        "operationId": "predict",
        "summary": "Predict: rows in, labels (and probabilities) out",
        "description": (
            "Send exactly one of `features` (positional) or `instances` (named, for models "
            "fitted on a DataFrame). Errors are RFC 9457 problem+json with a stable `code`."
        ),
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": request, "examples": examples}},
        },
        "responses": {
            "200": api.ok(
                "One prediction per row, in order; `probabilities` when asked for.", response
            ),
            **api.errors([400, 413, 415, 422, 500, 503], "Problem", PROBLEM_JSON),
        },
    }


def _metadata_schema(api: OpenAPIContext) -> Schema:
    strings = {"type": "array", "items": {"type": "string"}}
    return {
        "type": "object",
        "properties": {
            "name": {"const": api.model.name},
            "source": {
                "type": "string",
                "description": "The model source as configured, credentials and query values "
                "redacted: a path, models:/..., s3://...",
            },
            "source_revision": {
                "type": ["string", "null"],
                "description": "What was fetched: the MLflow version an alias resolved to, or "
                "the object's ETag/version id/Last-Modified.",
            },
            "model_file": {"type": "string", "description": "The local file loaded."},
            "mlflow": {
                "type": "object",
                "description": "From the MLflow model folder's MLmodel file, when there is one.",
            },
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "estimator": {"type": "string"},
            "task": {
                "enum": ["classification", "regression", "clustering", "outlier_detection", "other"]
            },
            "n_features": {"type": ["integer", "null"]},
            "feature_names": {"anyOf": [strings, {"type": "null"}]},
            "feature_kinds": {
                "anyOf": [
                    {"type": "array", "items": {"enum": ["number", "string"]}},
                    {"type": "null"},
                ]
            },
            "feature_nullable": {
                "anyOf": [{"type": "array", "items": {"type": "boolean"}}, {"type": "null"}],
                "description": "Per feature: whether it takes a missing value (JSON null).",
            },
            "classes": {"anyOf": [{"type": "array"}, {"type": "null"}]},
            "has_proba": {"type": "boolean"},
            "sklearn_version_trained": {"type": ["string", "null"]},
            "sklearn_version_running": {"type": "string"},
            "backend": {"enum": ["fast", "onnx", "sklearn"]},
            "fast_path": {"type": ["string", "null"]},
            "restpredict_version": {"type": "string"},
        },
        "required": [
            "name",
            "model_file",
            "sha256",
            "estimator",
            "task",
            "n_features",
            "has_proba",
            "restpredict_version",
        ],
        "examples": [{**api.model.metadata(), "restpredict_version": __version__}],
    }
