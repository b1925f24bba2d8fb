"""Responses, and the one mapping of errors to HTTP: RFC 9457 problem+json with a ``code``.

``exception_handlers`` is what the app installs; ``problem_response`` is what middleware and
endpoints answer a ``RestPredictError`` with when they answer it themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Send

from restpredict.errors import MethodNotAllowedError, NotFoundError, RestPredictError

__all__ = [
    "JSON",
    "PROBLEM_JSON",
    "JSONResponse",
    "exception_handlers",
    "problem_response",
    "send_json",
]

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"


class JSONResponse(Response):
    """A response encoded by msgspec (fast, and it refuses NaN rather than emit bad JSON)."""

    media_type = JSON

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else msgspec.json.encode(content)


async def send_json(send: Send, body: bytes, status: int = 200) -> None:
    """A complete JSON response in two messages, with no Response object in between."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def problem_response(error: RestPredictError, headers: dict[str, str] | None = None) -> Response:
    """RFC 9457 problem+json, plus a stable ``code``: the one error schema of the API."""
    body = {
        "type": f"urn:restpredict:problem:{error.code}",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
        **error.extra,
    }
    return JSONResponse(body, status_code=error.status, headers=headers, media_type=PROBLEM_JSON)


async def _restpredict_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RestPredictError)
    return problem_response(exc)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allowed = exc.headers.get("Allow", "") if exc.headers else ""
        error: RestPredictError = MethodNotAllowedError(
            f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
        )
        return problem_response(error, headers={"Allow": allowed})
    if exc.status_code == 404:
        error = NotFoundError(f"no route for {request.url.path}")
    else:
        error = RestPredictError(str(exc.detail))
        error.status = exc.status_code  # type: ignore[misc]
    return problem_response(error)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    return problem_response(RestPredictError("unexpected server error; see the server log"))


#: What the app answers each kind of exception with (``Starlette(exception_handlers=...)``).
exception_handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
    RestPredictError: _restpredict_error,
    HTTPException: _http_exception,
    Exception: _unexpected_error,
}
