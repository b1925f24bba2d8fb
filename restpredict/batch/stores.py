"""Tables in object stores (``s3://``, ``gs://``, ``az://``...): listed and read through fsspec.

The same fsspec backends as remote model sources (``restpredict[s3]`` and friends), finding
credentials the way the provider's own tools do; nothing here sees or logs them: every name
shown is redacted by ``sources.uri.redact``. An output goes to the store in one upload once the
run has succeeded (``upload``): an object store makes an object visible only when its upload
completes (a single PUT, or a multipart upload's completion), so a failed run leaves no object,
and a reader never sees half of one.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from restpredict.errors import InputError, SourceError
from restpredict.sources.uri import EXTRAS, parse_source, scrub

__all__ = ["RemoteFile", "find_remote_files", "is_remote", "upload"]


def is_remote(location: str) -> bool:
    """Whether ``location`` is an fsspec URL (``s3://...``) rather than a local path or glob."""
    scheme, sep, rest = location.partition("://")
    return bool(sep) and scheme.lower() in EXTRAS and bool(rest)


@dataclass(frozen=True)
class RemoteFile:
    """One file in a store; shown (``str``) by its redacted URL, opened like a ``Path``."""

    fs: Any
    path: str
    url: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    def open(self, mode: str = "r", **text: Any) -> IO[Any]:
        """The file, read through the backend's buffered reader."""
        try:
            return self.fs.open(self.path, mode, **text)  # type: ignore[no-any-return]
        except Exception as exc:
            raise InputError(f"{self}: cannot read input ({_reason(exc)})") from None

    def __str__(self) -> str:
        return self.url


def find_remote_files(location: str) -> list[RemoteFile]:
    """The files an fsspec URL names: one object, every object under a prefix, or a glob."""
    fs, path, shown = _filesystem(location)
    scheme = location.partition("://")[0]
    try:
        if glob.has_magic(path):
            names = sorted(fs.glob(path))
            names = [n for n in names if fs.isfile(n)]
        elif fs.isdir(path):
            names = sorted(fs.find(path))
        elif fs.isfile(path):
            names = [path]
        else:
            raise InputError(f"{shown}: cannot read input (no such object or prefix)")
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{shown}: cannot list the input ({_reason(exc)})") from None
    root = path.rstrip("/")
    files = [
        RemoteFile(fs, name, f"{scheme}://{name}")
        for name in names
        if not any(part.startswith((".", "_")) for part in _below(name, root))
    ]
    if not files:
        raise InputError(f"{shown}: no file there")
    return files


def upload(local: Path, location: str) -> None:
    """Put the finished output at ``location`` in one upload; InputError naming it if it fails."""
    fs, path, shown = _filesystem(location)
    try:
        fs.put_file(str(local), path)
    except Exception as exc:
        raise InputError(f"{shown}: cannot write the output ({_reason(exc)})") from None


def _filesystem(location: str) -> tuple[Any, str, str]:
    """A fresh filesystem for the URL (no shared instance or listing cache), its path, its
    redacted form."""
    ref = parse_source(location)
    try:  # ImportError: fsspec itself, or the package of the scheme's filesystem
        import fsspec

        fs, path = fsspec.core.url_to_fs(
            ref.text, skip_instance_cache=True, use_listings_cache=False
        )
    except ImportError:
        extra = EXTRAS[ref.scheme]
        raise SourceError(
            f"{ref.display}: {ref.scheme}:// tables need pip install 'restpredict[{extra}]'",
            code="missing_extra",
        ) from None
    except (ValueError, TypeError) as exc:
        raise InputError(f"{ref.display}: {_reason(exc)}") from None
    return fs, str(path), ref.display


def _below(name: str, root: str) -> tuple[str, ...]:
    """The parts of ``name`` under ``root`` (just its own name when it is the root itself)."""
    relative = name[len(root) :].strip("/") if name.startswith(root + "/") else name
    return PurePosixPath(relative).parts if relative != name else (PurePosixPath(name).name,)


def _reason(exc: BaseException) -> str:
    """The error's first line, any URL in it redacted (backends quote presigned URLs)."""
    text = str(exc).strip()
    line = text.splitlines()[0][:300] if text else type(exc).__name__
    return f"{type(exc).__name__}: {scrub(line)}" if text else line
