"""The user's own modules a pickle refers to (``features.MyTransformer``), made importable.

A pipeline with a custom transformer pickles a reference to its class by module and name;
unpickling imports that module. ``--code-path`` (``code_paths:``) names a ``.py`` file or a
directory, and :func:`activate` puts the directory that makes it importable at the front of
``sys.path`` before anything is unpickled (in the CLI process, in every worker, on reload).
A ``.py`` file is imported by its stem, a package directory (with ``__init__.py``) by its
name, and a plain directory makes each module inside it importable. Like the pickle itself,
this code runs with the server's rights: only name code you trust.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["activate", "import_root", "top_level_modules"]


def import_root(path: Path) -> Path:
    """The ``sys.path`` entry under which ``path`` is importable."""
    if path.is_file() or (path / "__init__.py").is_file():
        return path.resolve().parent
    return path.resolve()


def activate(paths: Iterable[Path]) -> None:
    """Make every code path importable (idempotent; the first path wins a name clash)."""
    roots = [str(import_root(p)) for p in paths]
    for root in reversed(roots):
        if root in sys.path:
            sys.path.remove(root)
        sys.path.insert(0, root)
    if roots:
        importlib.invalidate_caches()


def top_level_modules(path: Path) -> list[str]:
    """The module names a code path provides: what a pickle or an import would name."""
    if path.is_file():
        return [path.stem]
    if (path / "__init__.py").is_file():
        return [path.name]
    return sorted(
        p.stem if p.is_file() else p.name
        for p in path.iterdir()
        if (p.suffix == ".py" and p.is_file()) or (p / "__init__.py").is_file()
    )
