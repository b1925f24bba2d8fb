"""What the protocol modules share: error rendering per protocol, and model lookup by name."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from restpredict.asgi.state import current_model
from restpredict.errors import InputError, RestPredictError
from restpredict.model.loading import LoadedModel

__all__ = ["Handler", "Render", "client_status", "endpoint", "served_model"]

Handler = Callable[[Request], Awaitable[Response]]
Render = Callable[[RestPredictError], Response]

logger = logging.getLogger("restpredict.protocols")


def endpoint(render: Render) -> Callable[[Handler], Handler]:
    """Answer every error a handler raises in its protocol's shape, never with a traceback."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except RestPredictError as exc:
                return render(exc)
            except Exception:
                logger.exception("unexpected error on %s %s", request.method, request.url.path)
                return render(RestPredictError("unexpected server error; see the server log"))

        return run

    return decorate


def client_status(error: RestPredictError) -> int:
    """The protocols say "400 for invalid input" where /predict says 422; the rest is shared."""
    return 400 if isinstance(error, InputError) and error.status == 422 else error.status


def served_model(request: Request, name: str, version: str | None = None) -> LoadedModel:
    """The model served as ``name`` (and ``version``): 503 until ready, 404 naming what is
    served for another name or version."""
    return current_model(request, name, version)
