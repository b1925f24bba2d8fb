"""What the running restpredict is made of: its own wheel and its pinned dependencies.

A generated image must run the code and the library versions that were tested here, and it
must build from its context alone (restpredict is not on a package index). So:

- :func:`build_wheel` writes a wheel of the *running* restpredict, rebuilt from the files
  Python imports it from plus the installed distribution's metadata. This works the same
  from an editable install (files in the source tree) and from an installed wheel, needs no
  build backend and no network, and is byte-for-byte reproducible (fixed timestamps), so an
  unchanged restpredict keeps the image's layer cache.
- :func:`pinned_requirements` walks the installed distributions from restpredict's runtime
  requirements (extras and markers included) and pins every one to its installed version:
  the image gets exactly the dependency closure this environment runs, not whatever PyPI has
  today.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as metadata
import pkgutil
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from importlib.resources import files
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import restpredict
from restpredict._version import __version__
from restpredict.errors import BuildContextError

__all__ = ["build_wheel", "pinned_requirements", "wheel_name"]

DIST = "restpredict"
_CODE = ("*.py", "py.typed")
_TEMPLATES = ("*.py", "*.j2")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest zip timestamp: reproducible archives
_WHEEL = f"Wheel-Version: 1.0\nGenerator: restpredict {__version__}\nRoot-Is-Purelib: true\n"


def wheel_name(version: str = __version__) -> str:
    """The file name of restpredict's pure-Python wheel for ``version``."""
    return f"{DIST}-{version}-py3-none-any.whl"


def build_wheel(directory: Path) -> Path:
    """Write a wheel of the running restpredict into ``directory``; return its path."""
    dist_info = f"{DIST}-{__version__}.dist-info"
    entries = dict(_package_files())
    entries[f"{dist_info}/METADATA"] = _installed_metadata()
    entries[f"{dist_info}/WHEEL"] = (_WHEEL + "Tag: py3-none-any\n").encode()
    entry_points = _distribution().read_text("entry_points.txt")
    if entry_points:
        entries[f"{dist_info}/entry_points.txt"] = entry_points.encode()
    record = f"{dist_info}/RECORD"
    lines = [f"{name},sha256={_digest(data)},{len(data)}" for name, data in sorted(entries.items())]
    entries[record] = ("\n".join([*lines, f"{record},,"]) + "\n").encode()
    path = directory / wheel_name()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        # Package files first, .dist-info last and RECORD at the very end, as the spec advises.
        for name in sorted(entries, key=lambda n: (n == record, n.startswith(dist_info), n)):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name])
    return path


def _packages() -> Mapping[str, tuple[str, ...]]:
    """Package -> the files of it that belong in the wheel (as in pyproject's package data)."""
    found = {DIST: _CODE}
    for module in pkgutil.walk_packages(restpredict.__path__, f"{DIST}."):
        if module.ispkg:
            found[module.name] = _CODE
    found[f"{DIST}.templates"] = _TEMPLATES  # mapped from templates/ in the source tree
    return found


def _package_files() -> Iterator[tuple[str, bytes]]:
    for package, patterns in _packages().items():
        root = files(package)
        prefix = package.replace(".", "/")
        for entry in sorted(root.iterdir(), key=lambda e: e.name):
            if entry.is_file() and any(_matches(entry.name, p) for p in patterns):
                yield f"{prefix}/{entry.name}", entry.read_bytes()


def _matches(name: str, pattern: str) -> bool:
    return name.endswith(pattern[1:]) if pattern.startswith("*") else name == pattern


def _distribution() -> metadata.Distribution:
    try:
        return metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        raise BuildContextError(
            "restpredict is imported but not installed (no metadata): pip install it first"
        ) from None


def _installed_metadata() -> bytes:
    dist = _distribution()
    # A wheel or pip install has METADATA; a setuptools .egg-info (editable, on sys.path
    # from the source tree) has the same fields as PKG-INFO.
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    if not text or dist.version != __version__:
        raise BuildContextError(
            f"installed restpredict metadata ({dist.version}) does not match the running "
            f"code ({__version__}): reinstall restpredict"
        )
    return text.encode()


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def pinned_requirements(
    extras: Iterable[str] = (),
    *,
    python_version: str | None = None,
    also: Iterable[str] = (),
) -> dict[str, str]:
    """Every distribution restpredict (with ``extras``) needs at run time -> installed version.

    ``also``: more installed distributions to pin with their own closure (those the model
    needs, say xgboost-cpu). Markers are evaluated for this platform with ``python_version``
    (the image's Python) in place of the running one. Raises BuildContextError if a needed
    one is not installed.
    """
    environment = {key: str(value) for key, value in default_environment().items()}
    if python_version is not None:
        environment["python_version"] = python_version
    pins: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [(req, DIST) for req in _requirements(DIST, set(extras), environment)]
    pending += [(Requirement(name), "the model") for name in also]
    while pending:
        requirement, parent = pending.pop()
        name = canonicalize_name(requirement.name)
        if (name, frozenset(requirement.extras)) in seen:
            continue
        seen.add((name, frozenset(requirement.extras)))
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise BuildContextError(
                f"{requirement} (needed by {parent}) is not installed, so it cannot be pinned: "
                f"pip install '{requirement}'"
            ) from None
        pins[name] = version
        pending.extend((r, name) for r in _requirements(name, requirement.extras, environment))
    pins.pop(canonicalize_name(DIST), None)
    return dict(sorted(pins.items()))


def _requirements(
    dist: str, extras: set[str], environment: dict[str, str]
) -> Iterator[Requirement]:
    for line in metadata.requires(dist) or ():
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(
            marker.evaluate({**environment, "extra": extra}) for extra in ({""} | extras)
        ):
            yield requirement
