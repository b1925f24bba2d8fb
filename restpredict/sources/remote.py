"""Fetch ``s3://``, ``gs://``, ``az://``/``abfs://`` and ``http(s)://`` sources through fsspec.

Credentials are never restpredict's: each backend finds them the way its provider's own
tools do (``AWS_*`` variables, ``~/.aws``, instance roles and ``AWS_ENDPOINT_URL`` for s3fs;
``GOOGLE_APPLICATION_CREDENTIALS`` and workload identity for gcsfs; ``AZURE_STORAGE_*`` and
managed identity for adlfs). Nothing here logs them: errors name the redacted source.
A file is downloaded whole and its size checked before it counts; a folder (an MLflow model
folder) is downloaded file by file. Errors that can pass (network, timeouts, 5xx, 429) are
retried with backoff; 403 and 404 are not.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from restpredict.errors import (
    SourceAccessError,
    SourceError,
    SourceNotFoundError,
    SourceUnavailableError,
)
from restpredict.sources.cache import Cache, CachedEntry
from restpredict.sources.uri import EXTRAS, SourceRef, scrub

__all__ = ["ATTEMPTS", "fetch_remote"]

ATTEMPTS = 3
_BACKOFF = 0.5  # seconds before the second attempt; doubled after each failure
_STAMP_KEYS = ("VersionId", "ETag", "LastModified", "Last-Modified", "mtime", "size", "md5_hash")
T = TypeVar("T")


def fetch_remote(ref: SourceRef, cache: Cache, *, offline: bool = False) -> CachedEntry:
    """The source's current content in the cache, downloaded only if it changed."""
    if offline:
        return _cached_only(ref, cache)
    fs, path = _filesystem(ref)
    info: dict[str, Any] = _retrying(ref, "look up", lambda: fs.info(path))
    if info.get("type") == "directory":
        files: dict[str, dict[str, Any]] = _retrying(
            ref, "list", lambda: fs.find(path, detail=True)
        )
        if not files:
            raise SourceNotFoundError(f"{ref.display}: the folder is empty")
        stamp = _folder_stamp(path, files)
        name = Path(path.rstrip("/")).name or "model"
    else:
        files = {path: info}
        stamp = _stamp(info)
        name = ref.filename
    hit = cache.lookup(ref.text, stamp)
    if hit is not None:
        return hit
    return cache.store(
        ref.text,
        name=name,
        stamp=stamp,
        display=ref.display,
        fill=lambda target: _retrying(ref, "download", lambda: _download(fs, path, files, target)),
    )


def _cached_only(ref: SourceRef, cache: Cache) -> CachedEntry:
    hit = cache.lookup(ref.text, None, any_stamp=True)
    if hit is None:
        raise SourceUnavailableError(
            f"{ref.display}: offline, and not in the cache at {cache.root} (run once online)"
        )
    return hit


def _filesystem(ref: SourceRef) -> tuple[Any, str]:
    """A fresh fsspec filesystem: no shared instance or listing cache, so changes are seen."""
    extra = EXTRAS[ref.scheme]
    try:
        import fsspec

        fs, path = fsspec.core.url_to_fs(
            ref.text, skip_instance_cache=True, use_listings_cache=False
        )
        return fs, str(path)
    except ImportError:
        raise SourceError(
            f"{ref.display}: {ref.scheme}:// sources need pip install 'restpredict[{extra}]'",
            code="missing_extra",
        ) from None
    except (ValueError, TypeError) as exc:
        raise SourceError(f"{ref.display}: {_first_line(exc)}") from None


def _download(fs: Any, root: str, files: dict[str, dict[str, Any]], target: Path) -> None:
    """Each remote file to its place under ``target``, each size checked against its listing."""
    for remote, info in files.items():
        relative = remote[len(root) :].strip("/") if len(files) > 1 or remote != root else ""
        if ".." in Path(relative).parts:
            raise SourceError(f"{remote}: a listed name leaves the folder")
        local = target / relative if relative else target
        local.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(remote, str(local))
        expected = info.get("size")
        got = local.stat().st_size
        if isinstance(expected, int) and got != expected:
            raise _Truncated(f"received {got} of {expected} bytes of {remote}")


class _Truncated(OSError):
    """The download ended early; retried like a network error."""


def _retrying(ref: SourceRef, what: str, call: Callable[[], T]) -> T:
    delay = _BACKOFF
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except SourceError:
            raise
        except Exception as exc:
            error = _classify(ref, what, exc)
            if not isinstance(error, SourceUnavailableError) or attempt == ATTEMPTS:
                raise error from None
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")


def _classify(ref: SourceRef, what: str, exc: BaseException) -> SourceError:
    """Map a backend's exception to one line naming the source; transient ones are Unavailable."""
    status = _status(exc)
    reason = _first_line(exc)
    if status in (401, 403):
        return SourceAccessError(
            f"{ref.display}: access denied ({what}: HTTP {status}); check the credentials"
        )
    if isinstance(exc, FileNotFoundError) or status in (404, 410):
        return SourceNotFoundError(f"{ref.display}: not found ({what})")
    if isinstance(exc, PermissionError) or status in (401, 403):
        return SourceAccessError(
            f"{ref.display}: access denied ({what}: {reason}); check the provider's credentials"
        )
    transient = (
        isinstance(exc, (OSError, TimeoutError))
        or type(exc).__module__.split(".")[0] in ("aiohttp", "botocore", "aiobotocore")
        or (isinstance(status, int) and (status in (408, 429) or status >= 500))
    )
    if transient and not (
        isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)
    ):
        return SourceUnavailableError(
            f"{ref.display}: {what} failed after {ATTEMPTS} attempts ({type(exc).__name__}: "
            f"{reason})"
        )
    return SourceError(f"{ref.display}: {what} failed ({type(exc).__name__}: {reason})")


def _status(exc: BaseException) -> int | None:
    """The HTTP status behind an error; fsspec's HTTP backend wraps it in FileNotFoundError."""
    seen: BaseException | None = exc
    while seen is not None:
        status = getattr(seen, "status", None)
        if isinstance(status, int):
            return status
        seen = seen.__cause__ or seen.__context__
    return None


def _stamp(info: dict[str, Any]) -> str | None:
    """What identifies this version of a remote file; None when the backend gives nothing."""
    parts = [f"{key}={info[key]}" for key in _STAMP_KEYS if info.get(key) not in (None, "")]
    has_identity = any(not p.startswith("size=") for p in parts)
    return ";".join(parts) if has_identity else None


def _folder_stamp(root: str, files: dict[str, dict[str, Any]]) -> str | None:
    stamps = [_stamp(info) for info in files.values()]
    if any(s is None for s in stamps):
        return None
    joined = "\n".join(f"{name[len(root) :]}:{s}" for name, s in sorted(zip(files, stamps)))
    return "folder:" + hashlib.sha256(joined.encode("utf-8")).hexdigest()


def _first_line(exc: BaseException) -> str:
    """The message's first line with any URL in it redacted (backends quote presigned URLs)."""
    text = str(exc).strip()
    line = text.splitlines()[0][:300] if text else type(exc).__name__
    return scrub(line)
