"""The installed distributions a loaded model needs, found from the model itself.

An image must hold every library the pickle imports when it is unpickled (XGBoost, LightGBM,
CatBoost, category_encoders...), not only scikit-learn. They are found by walking the
unpickled object graph for the modules of every class and function in it, plus the imports
of the user's code paths, and mapping their top-level packages to installed distributions
with ``importlib.metadata.packages_distributions()``. Each is pinned at the version installed
here, like restpredict's own closure. A module that belongs to no distribution and no code
path cannot be put in an image; it is reported so the build can say so.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import struct
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restpredict.model.code_paths import top_level_modules

__all__ = ["SYSTEM_LIBRARIES", "ModelDependencies", "find_dependencies", "referenced_modules"]

#: Shared libraries that wheels link against but do not bundle, and the Debian package that
#: provides each (python:*-slim images lack them). The ELF dynamic section of a wheel's native
#: files names the libraries they need (DT_NEEDED), so any distribution needing one is found;
#: scikit-learn, which bundles its own renamed libgomp, is not.
SYSTEM_LIBRARIES = {"libgomp.so.1": "libgomp1"}
_ELF64_LE = b"\x7fELF\x02\x01"
_SHT_DYNAMIC, _DT_NEEDED = 6, 1

_MAX_OBJECTS = 200_000  # a bound on the walk: a forest of 1,000 trees is ~10,000 objects
_STDLIB = frozenset(sys.stdlib_module_names) | {"builtins", "__main__"}


@dataclass(frozen=True)
class ModelDependencies:
    """Distributions to install (name -> installed version) and modules nobody provides."""

    distributions: dict[str, str] = field(default_factory=dict)
    unprovided: tuple[str, ...] = ()
    system_packages: tuple[str, ...] = ()


def find_dependencies(estimator: Any, code_paths: Iterable[Path] = ()) -> ModelDependencies:
    """What ``estimator`` (and the code paths) import, as installed distributions."""
    paths = list(code_paths)
    own = {name for path in paths for name in top_level_modules(path)}
    needed = {m.partition(".")[0] for m in referenced_modules(estimator)} - own - _STDLIB
    imported = {m.partition(".")[0] for m in _code_imports(paths)} - own - _STDLIB
    owners = metadata.packages_distributions()
    found: dict[str, str] = {}
    unprovided = []
    for top in sorted(needed | imported):
        names = owners.get(top)
        if not names:
            if top in needed:  # the model cannot load without it; a code path's import may
                unprovided.append(top)  # be optional (inside a try), so it is not reported
            continue
        for name in names:
            try:
                found[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
    return ModelDependencies(
        dict(sorted(found.items())), tuple(unprovided), _system_packages(found)
    )


def _system_packages(distributions: Iterable[str]) -> tuple[str, ...]:
    """Debian packages for the shared libraries the distributions' native files need."""
    needed: set[str] = set()
    for name in distributions:
        for file in metadata.files(name) or ():
            if not str(file).endswith(".so") and ".so." not in str(file):
                continue
            try:
                data = Path(str(file.locate())).read_bytes()
            except OSError:
                continue
            libraries = _needed_libraries(data)
            needed.update(pkg for lib, pkg in SYSTEM_LIBRARIES.items() if lib in libraries)
    return tuple(sorted(needed))


def _needed_libraries(data: bytes) -> set[str]:
    """The DT_NEEDED entries of a 64-bit little-endian ELF file (empty for anything else)."""
    if not data.startswith(_ELF64_LE) or len(data) < 64:
        return set()
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = []
    for i in range(shnum):
        at = shoff + i * shentsize
        if at + 64 > len(data):
            return set()
        (kind,) = struct.unpack_from("<I", data, at + 4)
        offset, size, link = struct.unpack_from("<QQI", data, at + 0x18)
        sections.append((kind, offset, size, link))
    found: set[str] = set()
    for kind, offset, size, link in sections:
        if kind != _SHT_DYNAMIC or link >= len(sections):
            continue
        strings = sections[link][1]
        for at in range(offset, min(offset + size, len(data) - 15), 16):
            tag, value = struct.unpack_from("<qQ", data, at)
            if tag == _DT_NEEDED:
                end = data.find(b"\0", strings + value)
                found.add(data[strings + value : end].decode("ascii", "replace"))
    return found


def referenced_modules(root: Any) -> set[str]:
    """Modules of the classes and functions in the object graph under ``root``."""
    modules: set[str] = set()
    seen: set[int] = set()
    pending = [root]
    while pending and len(seen) < _MAX_OBJECTS:
        obj = pending.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (str, bytes, int, float, complex, bool, type(None))):
            continue
        if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__module__")):
            modules.add(str(getattr(obj, "__module__", "") or ""))
        modules.add(type(obj).__module__)
        pending.extend(_children(obj))
    modules.discard("")
    return modules


def _children(obj: Any) -> Iterator[Any]:
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            yield from obj.ravel()[:10_000].tolist()
        return
    if isinstance(obj, dict):
        yield from obj.keys()
        yield from obj.values()
    elif isinstance(obj, (list, tuple, set, frozenset)):
        yield from obj
    elif not isinstance(obj, type):
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict):
            yield from state.values()
        for slot in getattr(type(obj), "__slots__", ()):
            if isinstance(slot, str) and hasattr(obj, slot):
                yield getattr(obj, slot)


def _code_imports(paths: list[Path]) -> set[str]:
    """Top-level imports in the code paths' Python files (relative imports are their own)."""
    found: set[str] = set()
    for path in paths:
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in files:
            try:
                tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
            except (OSError, SyntaxError, UnicodeDecodeError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module)
    return found
