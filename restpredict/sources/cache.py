"""A local cache of fetched sources: atomic, verified, keyed by source and content digest.

Layout: ``ROOT/<sha256 of the source text>/<content digest>/<name>`` holds one fetched
version (a file or a folder) and ``ROOT/<source key>/current.json`` says which one is current
and the remote stamp (ETag, Last-Modified, version id) it was fetched at. A fetch writes into
a ``.partial-*`` folder, is verified, then renamed into place, so a half-written download is
never found; ``current.json`` is replaced atomically. The source text is stored only hashed
(it may carry a presigned signature); ``current.json`` holds its redacted form.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Cache", "CachedEntry", "default_cache_dir", "tree_digest"]

_CHUNK = 1024 * 1024
_KEEP = 2  # versions kept per source: the current one and the one before it
_STALE_PARTIAL = 24 * 3600  # seconds after which an unfinished download is surely abandoned


def default_cache_dir() -> Path:
    """The user's cache folder for restpredict (``~/.cache/restpredict`` on Linux)."""
    from platformdirs import user_cache_path

    return user_cache_path("restpredict", appauthor=False)


@dataclass(frozen=True)
class CachedEntry:
    """One fetched version on disk: ``path`` is the file or folder, ``digest`` its content."""

    path: Path
    digest: str
    stamp: str | None


class Cache:
    """Fetched sources under ``root``; see the module docstring for the layout."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def lookup(self, key: str, stamp: str | None, *, any_stamp: bool = False) -> CachedEntry | None:
        """The current version of ``key`` if its stamp matches (or ``any_stamp``) and verifies."""
        folder = self._folder(key)
        try:
            current = json.loads((folder / "current.json").read_text(encoding="utf-8"))
            digest, name = str(current["digest"]), str(current["name"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not any_stamp and (stamp is None or current.get("stamp") != stamp):
            return None
        path = folder / digest / name
        if not path.exists() or tree_digest(path) != digest:
            return None  # removed or altered since: fetch it again
        return CachedEntry(path, digest, current.get("stamp"))

    def store(
        self, key: str, *, name: str, stamp: str | None, display: str, fill: Callable[[Path], None]
    ) -> CachedEntry:
        """Run ``fill(path)`` into a temporary folder, then move the result into place."""
        folder = self._folder(key)
        # Private to this user: whoever can write here can swap what gets unpickled.
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=folder))
        try:
            fill(partial / name)
            digest = tree_digest(partial / name)
            final = folder / digest
            try:
                os.rename(partial, final)
            except OSError:
                if not (final / name).exists():  # not a concurrent fetch of the same bytes
                    raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        record = {"source": display, "stamp": stamp, "digest": digest, "name": name}
        _write_atomically(folder / "current.json", json.dumps(record, indent=2))
        self._prune(folder, digest)
        return CachedEntry(final / name, digest, stamp)

    def _folder(self, key: str) -> Path:
        return self.root / hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]

    def _prune(self, folder: Path, current: str) -> None:
        """Keep the newest versions; older ones, and downloads a killed process left, go."""
        stale = time.time() - _STALE_PARTIAL
        for partial in folder.glob(".partial-*"):
            with contextlib.suppress(OSError):
                if partial.stat().st_mtime < stale:
                    shutil.rmtree(partial, ignore_errors=True)
        versions = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
        versions.sort(key=lambda p: (p.name != current, -p.stat().st_mtime))
        for old in versions[_KEEP:]:
            shutil.rmtree(old, ignore_errors=True)


def tree_digest(path: Path) -> str:
    """SHA-256 of a file's bytes; for a folder, of its sorted relative paths and file digests."""
    if path.is_file():
        return _file_digest(path)
    lines = []
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        lines.append(f"{item.relative_to(path).as_posix()}\0{_file_digest(item)}\n")
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
