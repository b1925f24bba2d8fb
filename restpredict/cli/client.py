"""HTTP client for a running restpredict server (``restpredict predict --url``)."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from restpredict.errors import ClientError, RemoteError, ServerUnreachableError
from restpredict.model.schema import Scalar

__all__ = ["Client"]


class Client:
    """One keep-alive connection pool to a server; errors become ClientError subclasses."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        api_key: str | None = None,
        ca_cert: Path | None = None,
        client_cert: tuple[Path, Path] | None = None,
    ) -> None:
        """``ca_cert``: the CA bundle an ``https://`` server's certificate must chain to (else
        the system's); ``client_cert``: (certificate, key) for a server that asks for one."""
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key is not None else None
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            headers=headers,
            verify=_tls_context(ca_cert, client_cert),
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    def metadata(self) -> dict[str, Any]:
        """The server's ``/metadata`` document."""
        return self._request("GET", "/metadata")

    def predict(
        self,
        rows: Sequence[Sequence[Scalar] | dict[str, Scalar]],
        *,
        labels: bool = True,
        proba: bool = False,
    ) -> dict[str, Any]:
        """POST one chunk of rows (positional or named) to ``/predict``."""
        outputs = (["label"] if labels else []) + (["proba"] if proba else [])
        named = bool(rows) and isinstance(rows[0], dict)
        body = {"instances" if named else "features": list(rows), "return": outputs}
        return self._request("POST", "/predict", json=body)

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachableError(
                f"cannot reach {self.url}: {exc or type(exc).__name__}"
            ) from None
        if response.is_success:
            try:
                document: dict[str, Any] = response.json()
            except ValueError:
                raise RemoteError(f"{self.url}{path} answered with invalid JSON") from None
            return document
        raise RemoteError(_error_text(response), status=response.status_code)


def _tls_context(ca_cert: Path | None, client_cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    """Certificates verified against ``ca_cert`` (or the system's CAs), with our own if given."""
    try:
        context = ssl.create_default_context(cafile=str(ca_cert) if ca_cert else None)
        if client_cert is not None:
            context.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
    except (OSError, ssl.SSLError) as exc:
        raise ClientError(f"cannot use the TLS files: {exc}") from None
    return context


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("error") or body.get("message")
        if detail:
            return f"server answered {response.status_code}: {detail}"
    return f"server answered {response.status_code} {response.reason_phrase}"
