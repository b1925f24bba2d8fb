"""Unpack ``.tar.gz``/``.tgz``/``.tar``/``.zip`` models without trusting their entries.

Every entry is checked before anything is written: no absolute paths, no ``..``, no link
(symbolic or hard) that points outside the target, no devices, at most ``MAX_MEMBERS``
entries and ``MAX_BYTES`` unpacked. Tar archives then go through Python's ``data`` extraction
filter (PEP 706) as a second line; zip entries are written one by one, each read no further
than its declared size.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from restpredict.errors import UnsafeArchiveError

__all__ = ["ARCHIVE_SUFFIXES", "MAX_BYTES", "MAX_MEMBERS", "extract", "is_archive"]

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
MAX_BYTES = 4 * 1024**3
MAX_MEMBERS = 10_000


def is_archive(path: Path) -> bool:
    """True for a file whose name says it is an archive restpredict unpacks."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def extract(
    archive: Path, target: Path, *, max_bytes: int = MAX_BYTES, max_members: int = MAX_MEMBERS
) -> None:
    """Unpack ``archive`` into the new folder ``target``; UnsafeArchiveError if unsafe."""
    target.mkdir(parents=True)
    if archive.name.lower().endswith(".zip"):
        _extract_zip(archive, target, max_bytes, max_members)
    else:
        _extract_tar(archive, target, max_bytes, max_members)


def _extract_tar(archive: Path, target: Path, max_bytes: int, max_members: int) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            _check_totals(
                archive, len(members), sum(m.size for m in members), max_bytes, max_members
            )
            for member in members:
                _check_name(archive, member.name)
                if member.issym() or member.islnk():
                    _check_link(archive, member.name, member.linkname, hard=member.islnk())
                elif not (member.isfile() or member.isdir()):
                    raise UnsafeArchiveError(f"{archive.name}: {member.name}: not a file or folder")
            tar.extractall(target, filter="data")
    except tarfile.FilterError as exc:
        raise UnsafeArchiveError(f"{archive.name}: {exc}") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UnsafeArchiveError(f"{archive.name}: not a readable tar archive ({exc})") from None


def _extract_zip(archive: Path, target: Path, max_bytes: int, max_members: int) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            infos = zipped.infolist()
            _check_totals(
                archive, len(infos), sum(i.file_size for i in infos), max_bytes, max_members
            )
            for info in infos:
                _check_name(archive, info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise UnsafeArchiveError(f"{archive.name}: {info.filename}: links are refused")
            for info in infos:
                destination = target.joinpath(*PurePosixPath(info.filename).parts)
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(info) as src, destination.open("xb") as out:
                    shutil.copyfileobj(src, out)  # ZipExtFile stops at the declared size
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UnsafeArchiveError(f"{archive.name}: not a readable zip archive ({exc})") from None


def _check_totals(archive: Path, members: int, size: int, max_bytes: int, max_members: int) -> None:
    if members > max_members:
        raise UnsafeArchiveError(f"{archive.name}: {members} entries, more than {max_members}")
    if size > max_bytes:
        raise UnsafeArchiveError(f"{archive.name}: unpacks to {size} bytes, more than {max_bytes}")


def _check_name(archive: Path, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UnsafeArchiveError(f"{archive.name}: {name}: path outside the archive's folder")


def _check_link(archive: Path, name: str, link: str, *, hard: bool) -> None:
    base = PurePosixPath() if hard else PurePosixPath(name).parent
    parts: list[str] = []
    for part in (base / link).parts:
        if part == "..":
            if not parts:
                raise UnsafeArchiveError(f"{archive.name}: {name}: links outside the archive")
            parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    if PurePosixPath(link).is_absolute():
        raise UnsafeArchiveError(f"{archive.name}: {name}: links outside the archive")
