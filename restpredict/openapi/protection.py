"""What the protective middleware adds to the OpenAPI document: auth, overload, timeouts.

The middleware wraps every route, so its answers are not written next to each route but
added here to every operation they can reach, from the same settings the middleware
(``middleware/stack.py``) is built from:

- with an API key, the ``bearerAuth`` scheme; operations outside ``open_paths`` require
  it and answer 401 (with ``WWW-Authenticate``), those on it say ``security: []``;
- outside ``limit_exempt_paths``: 503 ``overloaded`` (with ``Retry-After``) and 504
  ``prediction_timeout`` (``reload_timeout`` on a reload or a repository load or unload),
  both problem+json whatever the route's own error shape;
- where a body is read: 408, in the route's own error shape (the protocols catch it like
  their other errors), so the body of its 400.

CORS answers only browser preflights (``OPTIONS``), which the document leaves out.
"""

from __future__ import annotations

from typing import Any

from restpredict.asgi.responses import PROBLEM_JSON
from restpredict.middleware.auth import CHALLENGE
from restpredict.middleware.limits import admin_operation
from restpredict.openapi.context import OpenAPIContext, PathItems, ref

__all__ = ["SCHEME", "components", "protect"]

SCHEME = "bearerAuth"
_REQUEST_ID = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}


def components(api: OpenAPIContext) -> dict[str, Any]:
    """The security scheme (with an API key) and the headers the middleware's answers carry."""
    found: dict[str, Any] = {
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before retrying; sent with the `overloaded` 503.",
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            },
            "WWW-Authenticate": {
                "description": "The bearer challenge.",
                "required": True,
                "schema": {"type": "string", "const": CHALLENGE},
            },
        }
    }
    if api.settings.api_key is not None:
        found["securitySchemes"] = {
            SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "The server's API key: `Authorization: Bearer <key>`. A missing "
                "and a wrong key get the same 401.",
            }
        }
    return found


def protect(api: OpenAPIContext, paths: PathItems) -> PathItems:
    """``paths`` with each operation's security and middleware statuses added."""
    return {
        path: {method: _operation(api, path, op) for method, op in item.items()}
        for path, item in paths.items()
    }


def _operation(api: OpenAPIContext, path: str, operation: dict[str, Any]) -> dict[str, Any]:
    settings = api.settings
    responses = dict(operation["responses"])
    protected: dict[str, Any] = {}
    if settings.api_key is not None:
        is_open = path in settings.open_paths
        protected["security"] = [] if is_open else [{SCHEME: []}]
        if not is_open:
            responses["401"] = _unauthorized()
    if "requestBody" in operation:
        responses["408"] = _request_timeout(api, operation)
    if path not in settings.limit_exempt_paths:
        responses["503"] = _overloaded(api, responses.get("503"))
        responses["504"] = _timed_out(api, path)
    return {**operation, **protected, "responses": dict(sorted(responses.items()))}


def _problem(description: str, **headers: Any) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {**_REQUEST_ID, **headers},
        "content": {PROBLEM_JSON: {"schema": ref("Problem")}},
    }


def _timed_out(api: OpenAPIContext, path: str) -> dict[str, Any]:
    settings = api.settings
    if admin_operation(path):
        return _problem(
            f"`reload_timeout`: no response started within `reload_timeout` "
            f"({settings.reload_timeout:g} s) of the complete body. The reload or load runs on."
        )
    return _problem(
        f"No response started within `prediction_timeout` ({settings.prediction_timeout:g} "
        "s) of the complete body. The model call runs on and holds its slot until it ends."
    )


def _unauthorized() -> dict[str, Any]:
    return _problem(
        "No `Authorization: Bearer <key>` with the server's key (`unauthorized`).",
        **{"WWW-Authenticate": {"$ref": "#/components/headers/WWW-Authenticate"}},
    )


def _request_timeout(api: OpenAPIContext, operation: dict[str, Any]) -> dict[str, Any]:
    """408, in the body shape the route gives its other client errors (those of its 400)."""
    own = operation["responses"]["400"]
    return {
        "description": f"The body did not arrive within `body_timeout` "
        f"({api.settings.body_timeout:g} s) of the headers; the connection is closed.",
        "headers": dict(_REQUEST_ID),
        "content": own["content"],
    }


def _overloaded(api: OpenAPIContext, own: dict[str, Any] | None) -> dict[str, Any]:
    """503 ``overloaded`` (problem+json), beside the route's own 503 if it has one."""
    words = (
        f"`overloaded`: requests have waited over {api.settings.queue_delay_target_ms:g} ms "
        f"for the model for {api.settings.queue_delay_interval_ms:g} ms, or "
        f"`max_concurrency` ({api.settings.max_concurrency}) requests are in flight; retry "
        "after `Retry-After` seconds."
    )
    overloaded = _problem(words, **{"Retry-After": {"$ref": "#/components/headers/Retry-After"}})
    if own is None:
        return overloaded
    return {
        **own,
        "description": f"{own['description']} Or {words}",
        "headers": {**own["headers"], **overloaded["headers"]},
        "content": {**own["content"], **overloaded["content"]},
    }
