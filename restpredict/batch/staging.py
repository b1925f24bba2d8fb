"""Write a file under a temporary name beside its target and rename it only on success.

A scoring run can fail at row 9,000,000 or be killed; whatever it wrote so far must not sit
under the name a later job reads as the finished result. The temporary name is hidden
(leading dot) and says ``.partial``; ``os.replace`` is atomic within one file system, which
writing beside the target guarantees.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from restpredict.errors import InputError

__all__ = ["staged"]


@contextlib.contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A temporary path for ``target``: renamed to it on a clean exit, deleted on any error."""
    directory = target.parent
    if not directory.is_dir():
        raise InputError(f"{target}: the directory {directory} does not exist")
    if target.is_dir():
        raise InputError(f"{target}: is a directory; name an output file")
    partial = directory / f".{target.name}.{os.getpid()}.partial"
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    try:
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InputError(f"{target}: cannot write the output ({exc.strerror or exc})") from None
