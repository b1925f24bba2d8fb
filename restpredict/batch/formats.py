"""The table formats batch scoring reads and writes, told apart by suffix or by name."""

from __future__ import annotations

from pathlib import PurePath
from typing import Literal, get_args

from restpredict.errors import InputError

__all__ = ["INPUT_FORMATS", "OUTPUT_FORMATS", "Format", "format_of", "input_format_of"]

Format = Literal["parquet", "arrow", "csv", "json", "jsonl"]
INPUT_FORMATS: tuple[Format, ...] = get_args(Format)
OUTPUT_FORMATS: tuple[Format, ...] = ("parquet", "arrow", "csv", "jsonl")

# Feather V2 is the Arrow IPC file format, so .feather and .arrow are read and written alike.
_SUFFIXES: dict[str, Format] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def format_of(path: str, given: str | None, *, allowed: tuple[Format, ...]) -> Format | None:
    """The named format if given (checked), else the one the suffix says, else None."""
    if given is not None:
        if given not in allowed:
            raise InputError(f"unknown format {given!r}; expected one of {', '.join(allowed)}")
        return given
    found = _SUFFIXES.get(PurePath(path).suffix.lower())
    return found if found in allowed else None


def input_format_of(path: str, given: str | None) -> Format:
    """The format of one input file, or an error saying how to name it."""
    found = format_of(path, given, allowed=INPUT_FORMATS)
    if found is None:
        raise InputError(
            f"{path}: cannot tell the format from the suffix; use --format "
            f"{'|'.join(INPUT_FORMATS)}"
        )
    return found
