"""Who may call the server: bearer-token auth, CORS, and the exposure warning.

The token is compared in constant time (both sides hashed to fixed-length digests
first, so not even the length leaks). A missing token and a wrong one get the
same 401, so a client cannot tell which it was.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Collection

from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from restpredict._types import ProblemRenderer
from restpredict.errors import UnauthorizedError
from restpredict.settings import Settings

__all__ = ["BearerAuth", "cors_middleware", "exposure_warning", "pickle_note"]

CHALLENGE = 'Bearer realm="restpredict"'


class BearerAuth:
    """Refuses every request without ``Authorization: Bearer <key>``, except on open paths."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: SecretStr,
        open_paths: Collection[str],
        problem: ProblemRenderer,
    ) -> None:
        self.app = app
        self._digest = _digest(token.get_secret_value())
        self._open = frozenset(open_paths)
        self._problem = problem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or scope["path"] in self._open or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # policy violation
            return
        error = UnauthorizedError(
            "this server needs an API key: send 'Authorization: Bearer <key>'"
        )
        response = self._problem(error, {"WWW-Authenticate": CHALLENGE})
        await response(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        matches = hmac.compare_digest(_digest(token.strip()), self._digest)
        return matches and scheme.lower() == "bearer"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def cors_middleware(origins: Collection[str]) -> Middleware:
    """CORS for the named origins only; no credentials (the token travels in a header)."""
    return Middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Retry-After", "X-Model-SHA256"],
        max_age=600,
    )


def exposure_warning(settings: Settings) -> str | None:
    """A warning when the server listens beyond loopback and anyone reaching it may call it."""
    if settings.api_key is not None or _is_loopback(settings.host):
        return None
    return (
        f"listening on {settings.host} without an API key: anyone who can reach this port can "
        "use the model; set RESTPREDICT_API_KEY or --api-key-file"
    )


def pickle_note(settings: Settings) -> str | None:
    """A note when a pickle will be loaded without a SHA-256 pin: loading it runs its code."""
    from restpredict.model import PICKLE_SUFFIXES  # scikit-learn's import: only when asked

    model = settings.model
    if model is None or settings.sha256 is not None:
        return None
    if model.suffix.lower() not in PICKLE_SUFFIXES:
        return None
    return (
        f"loading {model.name} runs the code stored in it (a pickle can do anything this user "
        f"can): load only files you trust, and pin this one with --sha256 (the first field of "
        f"`sha256sum {model}`) or sha256: in restpredict.yaml, so that a replaced file is refused"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
