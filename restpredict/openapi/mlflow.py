"""The MLflow scoring routes (``routes/mlflow.py``) as OpenAPI path items."""

from __future__ import annotations

from typing import Any

from restpredict.asgi.responses import JSON
from restpredict.openapi.context import OpenAPIContext, PathItems, Schema, ref
from restpredict.routes.mlflow import CSV, FORMATS

__all__ = ["openapi_paths"]


def openapi_paths(api: OpenAPIContext) -> PathItems:
    """The routes above as OpenAPI path items."""
    ready = {
        "type": "object",
        "properties": {"status": {"const": "ready"}},
        "required": ["status"],
    }
    return {
        "/invocations": {"post": _invocations_operation(api)},
        "/ping": {
            "get": {
                "tags": ["MLflow"],
                "operationId": "mlflowPing",
                "summary": "Health check (MLflow, SageMaker)",
                "responses": {
                    "200": api.ok("Ready.", ready, {"status": "ready"}),
                    **api.errors([503], "MLflowError"),
                },
            }
        },
    }


def _invocations_operation(api: OpenAPIContext) -> dict[str, Any]:
    table = api.table()
    formats: dict[str, Schema] = {
        "dataframe_split": _split_schema(api),
        "dataframe_records": table,
        "instances": table,
        "inputs": table,
    }
    request = {
        "type": "object",
        "properties": {
            **formats,
            "params": {"type": "object", "description": "Accepted and unused."},
        },
        "additionalProperties": False,
        "oneOf": [{"required": [name]} for name in FORMATS],
    }
    split: dict[str, Any] = {"data": [api.example_row()]}
    if api.named:
        split = {"columns": [name for name, _ in api.columns()], **split}
    examples = {
        "dataframe_split": {"summary": "Split DataFrame", "value": {"dataframe_split": split}},
        "instances": {"summary": "Rows", "value": {"instances": [api.example_row()]}},
    }
    if api.named:
        examples["dataframe_records"] = {
            "summary": "Records",
            "value": {"dataframe_records": [api.example_record()]},
        }
    return {
        "tags": ["MLflow"],
        "operationId": "mlflowInvocations",
        "summary": "Predict (MLflow scoring protocol)",
        "description": (
            "JSON with exactly one of `dataframe_split`, `dataframe_records`, `instances` or "
            "`inputs`, or a CSV body (a header of the feature names for models fitted on a "
            "DataFrame). Beyond the schema: `dataframe_split.columns` may list the features in "
            "another order (the rows follow it), `data` may be records, tables may be objects "
            "of equal-length columns, and CSV numbers may have exponents."
        ),
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": request, "examples": examples},
                CSV: {
                    "schema": {
                        "type": "string",
                        "pattern": api.csv_pattern(),
                        "description": f"At most {api.settings.max_rows} rows (the pattern "
                        f"shows up to {api.csv_pattern_rows()}).",
                    },
                    "example": api.csv_example(),
                },
            },
        },
        "responses": {
            "200": api.predictions_ok(),
            **api.errors([400, 413, 415, 500, 503], "MLflowError"),
        },
    }


def _split_schema(api: OpenAPIContext) -> Schema:
    columns: Schema = {"type": "array", "items": {"type": "string"}}
    if api.named:
        names = [name for name, _ in api.columns()]
        columns = {
            "type": "array",
            "prefixItems": [{"const": name} for name in names],
            "items": False,
            "minItems": len(names),
        }
    return {
        "type": "object",
        "properties": {
            "columns": {"anyOf": [columns, {"type": "null"}]},
            "data": api.many(ref("Row")),
            "index": {"type": ["array", "null"]},
        },
        "required": ["data"],
    }
