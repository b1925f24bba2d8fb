"""Resolve ``models:/`` and ``runs:/`` through the MLflow client, then download the folder.

The tracking server comes from MLflow's own configuration (``MLFLOW_TRACKING_URI``,
``MLFLOW_TRACKING_TOKEN``/``_USERNAME``/``_PASSWORD``, ``MLFLOW_REGISTRY_URI``); artifact
stores use their providers' credentials as MLflow does. MLflow's REST client retries
transient failures itself (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``). An alias is looked up
on every resolve, so a reload follows it; a model version's files never change, so a
version already in the cache is not downloaded again. ``mlflow-skinny`` is enough.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from restpredict.errors import (
    SourceAccessError,
    SourceError,
    SourceNotFoundError,
    SourceUnavailableError,
)
from restpredict.sources.cache import Cache, CachedEntry
from restpredict.sources.uri import SourceRef, scrub

__all__ = ["fetch_mlflow"]

_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
_DENIED = ("PERMISSION_DENIED", "UNAUTHENTICATED", "UNAUTHORIZED")


def fetch_mlflow(ref: SourceRef, cache: Cache, *, offline: bool = False) -> tuple[CachedEntry, str]:
    """The model folder (or file) the URI names, in the cache; and the resolved URI."""
    if offline:
        hit = cache.lookup(ref.text, None, any_stamp=True)
        if hit is None:
            raise SourceUnavailableError(
                f"{ref.display}: offline, and not in the cache at {cache.root} (run once online)"
            )
        return hit, (hit.stamp or ref.text).split(" ", 1)[0]
    mlflow_artifacts = _import_mlflow(ref)
    resolved, stamp = _pin(ref)
    hit = cache.lookup(ref.text, stamp)
    if hit is not None:
        return hit, resolved
    name = "model" if ref.kind == "registry" else ref.filename

    def fill(target: Path) -> None:
        staging = target.parent / ".download"
        try:
            local = mlflow_artifacts.download_artifacts(
                artifact_uri=resolved, dst_path=str(staging)
            )
        except Exception as exc:
            raise _classify(ref, "download", exc) from None
        os.rename(local, target)
        shutil.rmtree(staging, ignore_errors=True)

    return cache.store(ref.text, name=name, stamp=stamp, display=ref.display, fill=fill), resolved


def _import_mlflow(ref: SourceRef) -> Any:
    try:
        import mlflow.artifacts
    except ImportError:
        raise SourceError(
            f"{ref.display}: MLflow sources need pip install 'restpredict[mlflow]'",
            code="missing_extra",
        ) from None
    return mlflow.artifacts


def _pin(ref: SourceRef) -> tuple[str, str | None]:
    """The URI of one immutable version, and the cache stamp for it (None: always fetch)."""
    rest = ref.text.split(":/", 1)[1].strip("/")
    if ref.kind == "run":
        return ref.text, f"{ref.text} run"
    if "@" in rest:
        name, alias = rest.rsplit("@", 1)
        version = _lookup(ref, "get_model_version_by_alias", name, alias)
        return f"models:/{name}/{version.version}", f"models:/{name}/{version.version} {alias}"
    name, _, version_text = rest.partition("/")
    if not version_text:  # models:/m-ID, a logged model: immutable
        return ref.text, f"{ref.text} logged"
    if version_text.isdigit():
        version = _lookup(ref, "get_model_version", name, version_text)
        return f"models:/{name}/{version.version}", f"models:/{name}/{version.version}"
    return ref.text, None  # a stage ("Production", "latest"): MLflow resolves it each time


def _lookup(ref: SourceRef, method: str, *args: str) -> Any:
    from mlflow import MlflowClient

    try:
        return getattr(MlflowClient(), method)(*args)
    except Exception as exc:
        raise _classify(ref, "look up", exc) from None


def _classify(ref: SourceRef, what: str, exc: BaseException) -> SourceError:
    code = str(getattr(exc, "error_code", ""))
    message = scrub((str(exc).strip().splitlines() or [type(exc).__name__])[0][:300])
    if code in _NOT_FOUND or "not found" in message.lower():
        return SourceNotFoundError(f"{ref.display}: not found ({what}: {message})")
    if code in _DENIED:
        return SourceAccessError(f"{ref.display}: access denied ({what}: {message})")
    if isinstance(exc, (OSError, TimeoutError)) or "max retries" in message.lower():
        return SourceUnavailableError(f"{ref.display}: {what} failed ({message})")
    return SourceError(f"{ref.display}: {what} failed ({type(exc).__name__}: {message})")
