"""The OpenAPI 3.1 document of the running app, built from the loaded model. No HTTP here.

``openapi_document(model, settings)`` gathers path items from where the routes live: the
core routes below, each protocol module (``restpredict.protocols.openapi_paths``), the
admin reload (``restpredict.reload.openapi_paths``). They
all describe bodies with the JSON Schemas an ``OpenAPIContext`` derives from the model:
its real feature names, count and kinds, the categories its encoders know, its class
labels, and ``settings.max_rows``. Request schemas are exact where JSON Schema can say
it (so a fuzzer's schema-valid request is answered 200 and its invalid one 4xx) and
narrower than the server where it cannot: what else a route accepts is in its prose.

Adding a route: write a function returning its path items next to the handler and merge
it in ``openapi_document``. What the protective middleware answers on every route (401,
408, 503, 504) and the security scheme are added by ``middleware_openapi``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from restpredict._version import __version__
from restpredict.app import JSON, PROBLEM_JSON
from restpredict.model import LoadedModel
from restpredict.reload import openapi_paths as reload_paths
from restpredict.schema import ColumnKind, Scalar, known_categories
from restpredict.settings import Settings

__all__ = [
    "OPENAPI_VERSION",
    "OpenAPIContext",
    "PathItems",
    "Schema",
    "openapi_document",
    "ref",
]

OPENAPI_VERSION = "3.1.0"
Schema = dict[str, Any]
PathItems = dict[str, dict[str, Any]]

# The JSON numbers the server decodes: float64 (anything beyond is a 400). Not spelled as
# minimum/maximum, which would invite fuzzers to the edge of the range, where models overflow.
_NUMBER: Schema = {"type": "number", "format": "double"}
# A CSV number as the regex of the documented form: no exponent, at most 16 digits a side.
_CSV_NUMBER = r"-?(?:0|[1-9][0-9]{0,15})(?:\.[0-9]{1,16})?"
_CSV_PATTERN_CELLS = 1000
_METHOD_NOT_ALLOWED = (
    "Every path answers 405 with an `Allow` header for methods not listed here, and "
    "unknown paths answer 404."
)

# What each error status means, in the words of /predict (problem+json) and the protocols.
PROBLEM_STATUSES = {
    400: "The body is not parseable JSON (syntax, encoding, NaN, numbers beyond float64).",
    413: "The body is larger than `max_body_bytes`.",
    415: "The Content-Type is not JSON (UTF-8).",
    422: "Well-formed JSON that does not fit the model: wrong feature count, names or types, "
    "too many rows, a value the model refuses.",
    500: "The model failed, or returned values JSON cannot carry (NaN, infinity).",
    503: "The model is not loaded and warmed up yet; retry shortly.",
}
PROTOCOL_STATUSES = {
    400: "Malformed JSON, or input that does not fit the model (the protocols' 400).",
    404: "The path names another model (or a version: one unversioned model is served).",
    413: "The body is larger than `max_body_bytes`.",
    415: "The content type or encoding is not supported.",
    500: "The model failed, or returned values JSON cannot carry.",
    503: "The model is not loaded and warmed up yet.",
}


def ref(name: str) -> Schema:
    """A reference to a schema in ``components.schemas``."""
    return {"$ref": f"#/components/schemas/{name}"}


@dataclass(frozen=True)
class OpenAPIContext:
    """What every path contributor needs: the model, the settings, and schemas made from them."""

    model: LoadedModel
    settings: Settings
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    nullable: frozenset[str] = frozenset()

    @classmethod
    def of(cls, model: LoadedModel, settings: Settings) -> OpenAPIContext:
        """Read the categories the model's encoders know once, for every schema below."""
        s = model.schema
        names = s.feature_names
        categories = known_categories(model.estimator, names) if names is not None else {}
        columns = names or tuple(f"x{i}" for i in range(s.n_features or 0))
        nullable = frozenset(c for j, c in enumerate(columns) if s.nullable(j))
        return cls(model, settings, categories, nullable)

    # Model input ---------------------------------------------------------------------------

    @property
    def named(self) -> bool:
        """True when the model was fitted with feature names (so it takes named records)."""
        return self.model.schema.feature_names is not None

    def columns(self) -> list[tuple[str, ColumnKind]]:
        """(name, kind) of every feature; positional names ``x0..`` when the model has none."""
        s = self.model.schema
        names = s.feature_names or tuple(f"x{i}" for i in range(s.n_features or 0))
        number: ColumnKind = "number"
        kinds = s.feature_kinds or (number,) * len(names)
        return list(zip(names, kinds))

    def value(self, name: str, kind: ColumnKind) -> Schema:
        """One feature value: a float64 number, or a string (one of the known categories);
        null too where the model takes a missing value."""
        null = name in self.nullable
        if kind == "number":
            return {**_NUMBER, "type": ["number", "null"]} if null else dict(_NUMBER)
        known: list[Any] = list(self.categories.get(name, ()))
        schema: Schema = {"type": ["string", "null"] if null else "string"}
        return {**schema, "enum": [*known, None] if null else known} if known else schema

    def row(self) -> Schema:
        """One positional row: exactly ``n_features`` values, typed column by column."""
        n = self.model.schema.n_features
        if n is None:
            return {"type": "array", "items": {"type": ["number", "string"]}, "minItems": 1}
        if self.model.schema.numeric_only and not self.nullable:
            return {"type": "array", "items": dict(_NUMBER), "minItems": n, "maxItems": n}
        return {
            "type": "array",
            "prefixItems": [self.value(name, kind) for name, kind in self.columns()],
            "items": False,
            "minItems": n,
            "maxItems": n,
        }

    def record(self) -> Schema:
        """One named row: every feature name, and (unless ignored) no others."""
        columns = self.columns()
        extra: Schema | bool = False
        if self.settings.unknown_columns == "ignore":
            extra = {"anyOf": [dict(_NUMBER), {"type": "string"}]}
        return {
            "type": "object",
            "properties": {name: self.value(name, kind) for name, kind in columns},
            "required": [name for name, _ in columns],
            "additionalProperties": extra,
        }

    def many(self, item: Schema) -> Schema:
        """A non-empty list of at most ``max_rows`` items."""
        return {"type": "array", "items": item, "minItems": 1, "maxItems": self.settings.max_rows}

    def table(self) -> Schema:
        """Rows, or (for models fitted with names) records: what the protocols call instances."""
        if not self.named:
            return self.many(ref("Row"))
        return {"oneOf": [self.many(ref("Row")), self.many(ref("Record"))]}

    def example_row(self) -> list[Scalar]:
        """The schema's example row (zeros, and a category the model knows for text)."""
        return list(self.model.schema.example or ())

    def example_record(self) -> dict[str, Scalar]:
        """The example row keyed by feature name."""
        return dict(zip((name for name, _ in self.columns()), self.example_row()))

    def csv_pattern(self) -> str:
        """A regex of CSV bodies the model takes: the header (named models), then rows."""
        cells = []
        for name, kind in self.columns():
            known = self.categories.get(name)
            if kind == "number":
                cell = _CSV_NUMBER
            elif known:
                cell = "(?:" + "|".join(re.escape(_csv_cell(v)) for v in known) + ")"
            else:
                cell = '[^,"\\r\\n0-9.+-][^,"\\r\\n]*'
            cells.append(f"(?:{cell})?" if name in self.nullable else cell)  # empty: missing
        row = ",".join(cells)
        header = ""
        if self.named:
            names = ",".join(_csv_cell(name) for name, _ in self.columns())
            header = f"(?:{re.escape(names)}\\r?\\n)?"
        more = f"(?:\\r?\\n{row}){{0,{self.csv_pattern_rows() - 1}}}"
        return f"^{header}{row}{more}(?:\\r?\\n)?$"

    def csv_pattern_rows(self) -> int:
        """The rows ``csv_pattern`` allows: ``max_rows``, unless that makes too big a regex.

        Validators compile a bounded repetition into a program whose size grows with it
        (jsonschema-rs refuses 4 columns x 1000 rows), so the pattern stays within about
        1000 cells and the description states the real limit.
        """
        per_row = max(1, len(self.columns()))
        return max(1, min(self.settings.max_rows, _CSV_PATTERN_CELLS // per_row))

    def csv_example(self) -> str:
        """The example row as CSV, under a header for named models."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if self.named:
            writer.writerow([name for name, _ in self.columns()])
        writer.writerow(self.example_row())
        return buffer.getvalue()

    # Model output --------------------------------------------------------------------------

    def label(self) -> Schema:
        """One prediction: a class label, a number (regressors) or a cluster id."""
        s = self.model.schema
        if s.classes is not None:
            return {"enum": list(s.classes), "description": "A class label."}
        if s.task == "regression":
            return {"type": "number", "description": "The predicted value."}
        if s.task in ("clustering", "outlier_detection"):
            return {"type": "integer", "description": "A cluster id, or 1/-1 for outliers."}
        return {"description": "Whatever the estimator's predict returns, per row."}

    def probabilities(self) -> Schema:
        """One row's class probabilities, keyed by class label."""
        p = {"type": "number", "minimum": 0, "maximum": 1}
        classes = self.model.schema.classes
        if classes is None:
            return {"type": "object", "additionalProperties": p}
        keys = [str(c) for c in classes]
        return {
            "type": "object",
            "properties": dict.fromkeys(keys, p),
            "required": keys,
            "additionalProperties": False,
        }

    # Responses -----------------------------------------------------------------------------

    def ok(
        self, description: str, schema: Schema, example: Any = None, media: str = JSON
    ) -> dict[str, Any]:
        """A 200 response with one media type (and the request id header)."""
        content: dict[str, Any] = {"schema": schema}
        if example is not None:
            content["example"] = example
        return {"description": description, "headers": _headers(), "content": {media: content}}

    def predictions_ok(self) -> dict[str, Any]:
        """``{"predictions": [label, ...]}``: the 200 of KServe V1 and MLflow alike."""
        return self.ok(
            "One prediction per row.",
            {
                "type": "object",
                "properties": {"predictions": {"type": "array", "items": ref("Label")}},
                "required": ["predictions"],
            },
        )

    def problem(self, description: str) -> dict[str, Any]:
        """One problem+json error response, described in the route's own words."""
        return {
            "description": description,
            "headers": _headers(),
            "content": {PROBLEM_JSON: {"schema": ref("Problem")}},
        }

    def errors(self, statuses: list[int], schema: str, media: str = JSON) -> dict[str, Any]:
        """Error responses, each with its protocol's error body."""
        words = PROBLEM_STATUSES if media == PROBLEM_JSON else PROTOCOL_STATUSES
        return {
            str(status): {
                "description": words[status],
                "headers": _headers(),
                "content": {media: {"schema": ref(schema)}},
            }
            for status in statuses
        }


def _headers() -> dict[str, Any]:
    return {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}


def _csv_cell(value: Scalar) -> str:
    """One value as a CSV writer would write it (quoted when it must be)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([value])
    return buffer.getvalue()


def openapi_document(model: LoadedModel, settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route the app serves (the docs page aside)."""
    # They import this module.
    from restpredict import middleware_openapi
    from restpredict.protocols import openapi_paths as protocol_paths

    api = OpenAPIContext.of(model, settings)
    paths = {**_core_paths(api), **protocol_paths(api), **reload_paths(api)}
    components = _components(api)
    for key, value in middleware_openapi.components(api).items():
        components[key] = {**components.get(key, {}), **value}
    return {
        "openapi": OPENAPI_VERSION,
        "info": _info(api),
        "tags": [
            {"name": "restpredict", "description": "Predictions and model metadata."},
            {"name": "operations", "description": "Health, metrics and this document."},
            *_protocol_tags(),
        ],
        "paths": middleware_openapi.protect(api, paths),
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


def _core_paths(api: OpenAPIContext) -> PathItems:
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
                        "headers": _headers(),
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
            "model_file": {"type": "string"},
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
