"""Where refused rows go with ``--on-error skip``: a file of row numbers and reasons.

JSON Lines (``{"row": 12, "error": "..."}``) unless the name ends in ``.csv``. Staged like the
output, so a failed run leaves neither file behind.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import msgspec

from restpredict.batch.staging import staged
from restpredict.batch.validate import Reject

__all__ = ["RejectLog", "open_reject_log"]


class RejectLog:
    """Appends refused rows to an open text file, counting them."""

    def __init__(self, out: IO[str], as_csv: bool) -> None:
        self.count = 0
        self._out = out
        self._csv = csv.writer(out, lineterminator="\n") if as_csv else None
        if self._csv is not None:
            self._csv.writerow(["row", "error"])

    def add(self, rejects: list[Reject]) -> None:
        """Record these rows, in the order given."""
        for reject in rejects:
            if self._csv is not None:
                self._csv.writerow([reject.row, reject.reason])
            else:
                line = msgspec.json.encode({"row": reject.row, "error": reject.reason})
                self._out.write(line.decode() + "\n")
        self.count += len(rejects)


@contextlib.contextmanager
def open_reject_log(path: Path) -> Iterator[RejectLog]:
    """A RejectLog writing to ``path`` (renamed into place when the run succeeds)."""
    with staged(path) as partial, partial.open("w", encoding="utf-8", newline="") as out:
        yield RejectLog(out, as_csv=path.suffix.lower() == ".csv")
