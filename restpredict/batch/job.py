"""What one scoring run is asked to do, and what it reports when done."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, Protocol

from restpredict.batch.formats import Format

__all__ = ["BatchJob", "OnError", "Progress", "Summary"]

OnError = Literal["fail", "skip"]


@dataclass(frozen=True)
class BatchJob:
    """The input, the output and the rules of one run (the flags of ``predict --output``)."""

    input: str
    output: Path | str | IO[bytes]  # a str is an object-store URL (``s3://bucket/out.parquet``)
    output_format: Format
    input_format: str | None = None
    keep_columns: tuple[str, ...] = ()
    keep_all: bool = False
    proba: bool = False
    on_error: OnError = "fail"
    errors_to: Path | None = None
    batch_size: int = 65_536
    jobs: int = 1
    ignore_unknown: bool = False


@dataclass
class Summary:
    """Rows read, scored and refused, the wall-clock seconds it took, and what predicted."""

    rows_in: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    seconds: float = 0.0
    backend: str = ""  # ``backend_label``: sklearn, onnx, or the fast path's family

    def line(self) -> str:
        """``rows in 1,000  scored 998  rejected 2  1.2 s  832 rows/s  backend sklearn``."""
        rate = self.rows_in / self.seconds if self.seconds > 0 else 0.0
        line = (
            f"rows in {self.rows_in:,}  scored {self.rows_scored:,}  "
            f"rejected {self.rows_rejected:,}  {self.seconds:.1f} s  {rate:,.0f} rows/s"
        )
        return f"{line}  backend {self.backend}" if self.backend else line


class Progress(Protocol):
    """Told how many rows there are (if known) and how many are done; the CLI draws it."""

    def start(self, total: int | None) -> None:
        """Called once, before the first batch."""

    def advance(self, rows: int) -> None:
        """Called after each batch is written."""
