"""What a model source string names, and how to show it without its secrets.

A source is a local path (file, MLflow model folder or archive), an MLflow URI
(``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``runs:/RUN_ID/PATH``) or an fsspec URL
(``s3://``, ``gs://``, ``az://``/``abfs://``, ``http(s)://``). Parsing only looks at the
text: nothing is fetched here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from restpredict.errors import ConfigError

__all__ = ["EXTRAS", "SourceKind", "SourceRef", "local_path", "parse_source", "redact", "scrub"]

SourceKind = Literal["local", "registry", "run", "remote"]

#: The pip extra that brings each remote scheme's fsspec backend.
EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "http": "http",
    "https": "http",
}
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_MLFLOW = {"models": "registry", "runs": "run"}


@dataclass(frozen=True)
class SourceRef:
    """A parsed source: ``text`` as given (it may carry credentials), ``display`` without them."""

    text: str
    kind: SourceKind
    scheme: str
    display: str

    @property
    def name(self) -> str:
        """The last path segment without suffixes: the model's default name."""
        if self.kind == "registry":
            rest = self.text.split(":/", 1)[1].strip("/")
            return rest.split("@", 1)[0].split("/", 1)[0]
        path = self.text if self.kind == "local" else unquote(urlsplit(self.text).path)
        posix = PurePosixPath(path.replace("\\", "/").rstrip("/"))
        if posix.name == "artifacts" and posix.parent.name:  # mlruns/0/models/m-…/artifacts
            posix = posix.parent
        last = posix.name or "model"
        for suffix in (".tar.gz", ".tgz", ".zip", ".tar"):
            if last.lower().endswith(suffix):
                return last[: -len(suffix)]
        return PurePosixPath(last).stem if "." in last else last

    @property
    def filename(self) -> str:
        """The last path segment, which tells a file's format (``model.joblib``)."""
        path = unquote(urlsplit(self.text).path) if self.kind != "local" else self.text
        return PurePosixPath(path.rstrip("/")).name or "model"


def parse_source(text: str) -> SourceRef:
    """Classify a source string; ConfigError for an unknown scheme or a malformed MLflow URI."""
    text = text.strip()
    if not text:
        raise ConfigError("model: the source is empty")
    scheme, sep, _ = text.partition(":")
    scheme = scheme.lower()
    if not sep or len(scheme) == 1 or not scheme.isascii() or not scheme.isalnum():
        return SourceRef(text, "local", "", text)  # a path (C:\\ on Windows too)
    if scheme == "file":
        path = unquote(urlsplit(text).path)
        return SourceRef(path, "local", "", path)
    if scheme in _MLFLOW:
        return _mlflow_ref(text, scheme)
    if scheme in EXTRAS:
        if not urlsplit(text).netloc:
            raise ConfigError(f"model: {redact(text)}: expected {scheme}://HOST-OR-BUCKET/PATH")
        return SourceRef(text, "remote", scheme, redact(text))
    known = ", ".join(["models:/", "runs:/", *(f"{s}://" for s in EXTRAS), "a local path"])
    raise ConfigError(f"model: {redact(text)}: unsupported scheme {scheme!r} (known: {known})")


def _mlflow_ref(text: str, scheme: str) -> SourceRef:
    rest = text.split(":", 1)[1]
    if not rest.startswith("/") or rest.startswith("//"):
        raise ConfigError(f"model: {text}: expected {scheme}:/... with one slash")
    parts = [p for p in rest.strip("/").split("/") if p]
    if scheme == "runs" and len(parts) < 2:
        raise ConfigError(f"model: {text}: expected runs:/RUN_ID/PATH")
    if scheme == "models" and not (
        len(parts) == 2 or (len(parts) == 1 and ("@" in parts[0] or parts[0].startswith("m-")))
    ):
        raise ConfigError(
            f"model: {text}: expected models:/NAME/VERSION, models:/NAME@ALIAS or models:/m-ID"
        )
    return SourceRef(text, "registry" if scheme == "models" else "run", scheme, text)


def redact(text: str) -> str:
    """The source as it may be shown and logged: no user info, no query values, no fragment.

    Presigned URLs (S3 ``X-Amz-Signature``, GCS ``X-Goog-Signature``, Azure SAS ``sig``) and
    ``user:password@`` carry credentials; every query value is hidden, since a name alone does
    not tell which ones are secret.
    """
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<unparseable URL>"
    if not parts.scheme or len(parts.scheme) == 1:
        return text
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(f"{key}=***" for key, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub(message: str) -> str:
    """A backend's error message with every URL in it redacted (they quote presigned URLs)."""
    return _URL.sub(lambda match: redact(match.group(0)), message)


def local_path(ref: SourceRef) -> Path:
    """The filesystem path of a local source, with ``~`` expanded."""
    return Path(ref.text).expanduser()
