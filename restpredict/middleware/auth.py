"""Who may call the server: bearer-token auth.

The token is compared in constant time (both sides hashed to fixed-length digests
first, so not even the length leaks). A missing token and a wrong one get the
same 401, so a client cannot tell which it was.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection

from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from restpredict.asgi.types import ProblemRenderer
from restpredict.errors import UnauthorizedError

__all__ = ["CHALLENGE", "BearerAuth"]

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

    def admits(self, scope: Scope) -> bool:
        """Whether this HTTP request may pass: an open path, or the right key."""
        return scope["path"] in self._open or self._authorized(scope)

    def _authorized(self, scope: Scope) -> bool:
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        matches = hmac.compare_digest(_digest(token.strip()), self._digest)
        return matches and scheme.lower() == "bearer"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
