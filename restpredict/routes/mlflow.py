"""MLflow's scoring protocol: ``POST /invocations`` (and ``GET /ping``), as ``mlflow models serve``.

JSON bodies carry exactly one of ``dataframe_split``, ``dataframe_records``, ``instances`` or
``inputs`` (plus an optional ``params`` object, accepted and unused: a scikit-learn model
takes none); ``text/csv`` bodies are read like ``restpredict predict --input file.csv``.
Rows are validated by ``codecs.payload.rows_to_query`` and predicted through
``asgi.query.run_query``; the answer is ``{"predictions": [...]}``. Errors are MLflow's
``{"error_code", "message"}``, without the stack trace MLflow adds for model failures.
"""

from __future__ import annotations

import io
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from restpredict.asgi.body import read_body
from restpredict.asgi.query import run_query
from restpredict.asgi.responses import JSON, JSONResponse
from restpredict.asgi.state import current_model
from restpredict.codecs.payload import Row, decode_json, decode_table, rows_to_query
from restpredict.codecs.rows import chunks
from restpredict.errors import (
    InputError,
    MalformedBodyError,
    RestPredictError,
    UnsupportedMediaTypeError,
)
from restpredict.model.loading import LoadedModel
from restpredict.observability.exchange import timed
from restpredict.routes.protocol import client_status, endpoint
from restpredict.settings import Settings

__all__ = ["FORMATS", "routes"]

CSV = "text/csv"
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_ERROR_CODES = {404: "RESOURCE_DOES_NOT_EXIST", 503: "TEMPORARILY_UNAVAILABLE"}


class _Split(msgspec.Struct):
    data: msgspec.Raw
    columns: list[str] | None = None
    index: list[Any] | None = None


def _render(error: RestPredictError) -> Response:
    status = client_status(error)
    default = "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"
    code = _ERROR_CODES.get(status, default)
    return JSONResponse({"error_code": code, "message": error.detail}, status_code=status)


@endpoint(_render)
async def ping(request: Request) -> Response:
    """``GET /ping``: 200 once the model is ready (MLflow's and SageMaker's health check)."""
    current_model(request)
    return JSONResponse({"status": "ready"})


@endpoint(_render)
async def invocations(request: Request) -> Response:
    """``POST /invocations``: JSON or CSV rows in, ``{"predictions": [...]}`` out."""
    model = current_model(request)
    settings: Settings = request.app.state.settings
    media = _media_type(request.headers.get("content-type"))
    body = await read_body(request, settings.max_body_bytes)
    with timed(request.scope, "decode"):
        rows, where = _csv_rows(body, model) if media == CSV else _json_rows(body, model)
        query = rows_to_query(
            rows,
            model.schema,
            max_rows=settings.max_rows,
            ignore_unknown=settings.unknown_columns == "ignore",
            where=where,
        )
    prediction = await run_query(request, model, query)
    assert prediction.labels is not None
    return JSONResponse(msgspec.json.encode({"predictions": prediction.labels.tolist()}))


def _media_type(content_type: str | None) -> str:
    """``application/json`` (also when absent) or ``text/csv``, UTF-8 only, as MLflow allows."""
    if content_type is None:
        return JSON
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    charset_ok = all(p.removeprefix("charset=").strip('"') in ("utf-8", "utf8") for p in params)
    if media in (JSON, CSV) and charset_ok:
        return media
    raise UnsupportedMediaTypeError(
        f"Content-Type {content_type!r} is not supported; send {JSON} or {CSV} (UTF-8)"
    )


def _json_rows(body: bytes, model: LoadedModel) -> tuple[list[Row], str]:
    fields: dict[str, msgspec.Raw] = decode_json(body, dict[str, msgspec.Raw])
    given = [name for name in FORMATS if name in fields]
    unknown = sorted(set(fields) - set(FORMATS) - {"params"})
    expected = "expected exactly one of " + ", ".join(f'"{name}"' for name in FORMATS)
    if not given and {"columns", "data"} & set(unknown):
        raise InputError(
            f'{expected}: since MLflow 2.0 a split-oriented DataFrame goes inside "dataframe_split"'
            ', as {"dataframe_split": {"columns": [...], "data": [[...]]}}',
            code="missing_features",
        )
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(unknown)}; {expected}", code="invalid_input")
    if len(given) != 1:
        code = "ambiguous_input" if given else "missing_features"
        raise InputError(f"{expected}, got {len(given) or 'none'}", code=code)
    if "params" in fields:
        decode_json(bytes(fields["params"]), dict[str, Any], "params")
    where = given[0]
    if where == "dataframe_split":
        split: _Split = decode_json(bytes(fields[where]), _Split, where)
        data_where = f"{where}.data"
        table = decode_table(
            bytes(split.data), model.schema, where=data_where, columns=split.columns
        )
        return table, data_where
    return decode_table(bytes(fields[where]), model.schema, where=where), where


def _csv_rows(body: bytes, model: LoadedModel) -> tuple[list[Row], str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBodyError(f"CSV body is not valid UTF-8 (byte {exc.start})") from None
    rows = [
        row for chunk in chunks(io.StringIO(text), "csv", model.schema, 10_000) for row in chunk
    ]
    if not rows:
        raise InputError("the CSV body has no rows", code="empty_input")
    return rows, "csv"


routes = [
    Route("/invocations", invocations, methods=["POST"]),
    Route("/ping", ping, methods=["GET"]),
]
