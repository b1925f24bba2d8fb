"""Serving state: the model a request is answered by, what the server process tells the app
about itself, and the headers that follow from it. Which model that is, of several, is the
registry's (``asgi.registry``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import State
from starlette.requests import Request
from starlette.types import Message, Scope

from restpredict.asgi.registry import ModelRegistry
from restpredict.errors import NotReadyError
from restpredict.model.loading import LoadedModel

__all__ = [
    "MODEL_HEADER",
    "ROUTING_KEY_HEADER",
    "VERSION_HEADER",
    "ServingHeaders",
    "ServingState",
    "current_model",
    "model_for",
]

MODEL_HEADER = "X-Model-SHA256"
_MODEL_HEADER = MODEL_HEADER.lower().encode("ascii")
#: The version that answered, on answers of a versioned model.
VERSION_HEADER = "X-Model-Version"
_VERSION_HEADER = VERSION_HEADER.lower().encode("ascii")
#: The request header that keeps a client on one version of a split (canary) name.
ROUTING_KEY_HEADER = "X-Routing-Key"
_ROUTING_KEY = ROUTING_KEY_HEADER.lower().encode("ascii")


@dataclass
class ServingState:
    """Flags the server flips (on SIGTERM) and the app reads (readiness, headers)."""

    draining: bool = False
    # Set in workers of a multi-process server: the process to signal for a rolling reload,
    # and the directory where it reports on its workers (``asgi.fleet``).
    supervisor_pid: int | None = None
    fleet_dir: Path | None = None
    # A worker retired by a rolling reload: its answers close their connections, but it is
    # still ready (the server as a whole is).
    retiring: bool = False


class ServingHeaders:
    """Names the model that answered, and asks clients to reconnect elsewhere while draining.

    Not a middleware of its own: the access layer, which already adds ``X-Request-ID``, asks
    it for these headers when a response starts (one send wrapper instead of two, on every
    request). The model is the one the route took from ``current_model`` (kept in the
    request state), so a response names the model that computed it even across a hot swap.
    """

    def __init__(self, state: ServingState) -> None:
        self.state = state

    def __call__(self, scope: Scope, message: Message) -> list[tuple[bytes, bytes]]:
        extra = []
        model = scope.get("state", {}).get("model")
        if model is not None:
            extra.append((_MODEL_HEADER, model.sha256.encode("ascii")))
            if model.version is not None:
                extra.append((_VERSION_HEADER, model.version.encode("ascii")))
        state = self.state
        if (state.draining or state.retiring) and not _has_connection_header(message):
            extra.append((b"connection", b"close"))
        return extra


def _routing_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == _ROUTING_KEY:
            return bytes(value).decode("latin-1")
    return None


def _has_connection_header(message: Message) -> bool:
    return any(name.lower() == b"connection" for name, _ in message.get("headers", ()))


def current_model(
    request: Request, name: str | None = None, version: str | None = None
) -> LoadedModel:
    """The model serving this request (none named: the default), NotReadyError (503) before
    start-up is done, NotFoundError (404) naming what is served for another name."""
    return model_for(request.scope, request.app.state, name, version)


def model_for(
    scope: Scope, state: State, name: str | None = None, version: str | None = None
) -> LoadedModel:
    """``current_model`` from a scope: kept in the request state for ``X-Model-SHA256``."""
    if not state.ready:
        raise NotReadyError("the model is not loaded yet; retry shortly")
    registry: ModelRegistry = state.registry
    key = _routing_key(scope) if registry.splits and version is None else None
    model = registry.resolve(name, version, key)
    scope.setdefault("state", {})["model"] = model  # the model this request is answered by
    if registry.leasing:
        registry.lease(scope, model)
    return model
