"""Reading request bodies: size-limited, and the JSON Content-Type check of ``/predict``."""

from __future__ import annotations

import functools

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope

from restpredict.asgi.responses import JSON
from restpredict.errors import PayloadTooLargeError, UnsupportedMediaTypeError

__all__ = ["body_headers", "check_json_content_type", "read_body", "receive_body"]


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused early by Content-Length and again by counting streamed bytes."""
    return await receive_body(request.receive, limit, request.headers.get("content-length"))


async def receive_body(receive: Receive, limit: int, declared: str | None) -> bytes:
    """``read_body`` for plain ASGI endpoints, given the declared Content-Length if any."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"body is {declared} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def body_headers(scope: Scope) -> tuple[str | None, str | None]:
    """Content-Type and Content-Length, the first of each, as Starlette's Headers reads them."""
    content_type = length = None
    for name, value in scope["headers"]:
        if name == b"content-type" and content_type is None:
            content_type = value.decode("latin-1")
        elif name == b"content-length" and length is None:
            length = value.decode("latin-1")
    return content_type, length


@functools.lru_cache(maxsize=64)
def check_json_content_type(value: str) -> None:
    """Refuse what is not JSON in UTF-8 (the few values clients send are remembered as fine).

    Parameters other than ``charset`` are ignored, as RFC 9110 lets a recipient do."""
    media, *params = value.split(";")
    media = media.strip().lower()
    charset = "utf-8"
    for param in params:
        name, _, given = param.partition("=")
        if name.strip().lower() == "charset":
            charset = given.strip().strip('"').lower()
    if (media == JSON or media.endswith("+json")) and charset in ("utf-8", "utf8"):
        return
    raise UnsupportedMediaTypeError(
        f"Content-Type {value!r} is not supported; send application/json (UTF-8)"
    )
