"""How the server's log lines look: JSON lines for machines, one readable line for people.

``logging_config(settings)`` is the one logging setup of the server, a plain
``dictConfig`` dictionary. ``server.run`` hands it to uvicorn, which applies it in
the server process and again in every spawned worker; nothing is configured at
import time. Records on the ``restpredict.access`` logger carry their fields in
``record.access`` (see ``middleware/access.py``); both formatters print them.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from typing import IO, Any, Literal

import msgspec

from restpredict.observability.turns import TurnQueue
from restpredict.settings import Settings

__all__ = [
    "ACCESS_LOGGER",
    "JsonFormatter",
    "TextFormatter",
    "TurnBufferedHandler",
    "direct_json_handler",
    "json_document",
    "logging_config",
    "resolve_format",
]

ACCESS_LOGGER = "restpredict.access"
# msgspec encodes a log line about 3x faster than the standard library (this runs once per
# request); the standard library's encoder, built once, takes what msgspec refuses (say, a
# lone surrogate in a message).
_FAST_JSON = msgspec.json.Encoder(enc_hook=str)
_JSON = json.JSONEncoder(default=str)
LogFormat = Literal["json", "text"]

# Control characters (and Unicode line breaks) in a path or message could forge extra
# log lines in text mode; JSON escapes them by itself.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(32), 127)} | {
    0x85: "\\x85",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def resolve_format(log_format: str, stream: IO[str]) -> LogFormat:
    """``auto`` means text on a terminal, JSON lines everywhere else (pipes, files, containers)."""
    if log_format == "auto":
        return "text" if stream.isatty() else "json"
    return "text" if log_format == "text" else "json"


def logging_config(settings: Settings, stream: IO[str]) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server: one handler on stderr, our formatter."""
    json_lines = resolve_format(settings.log_format, stream) == "json"
    formatter = "JsonFormatter" if json_lines else "TextFormatter"
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"restpredict": {"()": f"restpredict.observability.logs.{formatter}"}},
        "handlers": {
            "stderr": {
                "class": "restpredict.observability.logs.TurnBufferedHandler",
                "formatter": "restpredict",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"level": level},
            # restpredict writes the access log itself, with request ids and row counts.
            "uvicorn.access": {"handlers": [], "propagate": False},
            "restpredict": {"level": level},
        },
        "root": {"handlers": ["stderr"], "level": level},
    }


class TurnBufferedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A ``StreamHandler`` that writes the lines logged during one event-loop turn at once.

    Under load the access log emits a line per request, and many requests finish in the
    same turn; a write and a flush per line cost more than formatting it. Lines logged on
    a thread without a running loop (start-up, worker threads) are written at once, after
    what is pending, so the order holds; ``flush`` (called at exit) writes what is left.
    A process killed outright loses at most the lines of its last loop turn.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream)
        # Lines, each with its record (None for lines added by ``add_json_lines``).
        self._lines: TurnQueue[tuple[str, logging.LogRecord | None]] = TurnQueue(
            self._write, lock=self.lock
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._lines.add((line, record))

    def add_json_lines(self, documents: list[dict[str, Any]]) -> None:
        """Queue the lines of ``documents`` as ``JsonFormatter`` would write them, in one go.

        For the access log (see ``direct_json_handler``): one encoder call for the lines of a
        whole loop turn, and no record or handler call for each.
        """
        try:
            text = _FAST_JSON.encode_lines(documents).decode("utf-8")
        except (TypeError, ValueError, UnicodeError):
            text = "".join(_JSON.encode(doc) + "\n" for doc in documents)
        self.acquire()
        try:
            self._lines.add((text, None))
        finally:
            self.release()

    def flush(self) -> None:
        self._lines.flush()
        super().flush()

    def _write(self, lines: list[tuple[str, logging.LogRecord | None]]) -> None:
        try:
            self.stream.write("".join(line for line, _ in lines))
            super().flush()
        except Exception:
            record = lines[-1][1] or logging.makeLogRecord({"msg": "(log lines lost)"})
            self.handleError(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus the access fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc = json_document(
            record.created, record.levelname, record.name, record.process, record.getMessage()
        )
        doc.update(getattr(record, "access", {}))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        try:
            return _FAST_JSON.encode(doc).decode("utf-8")
        except (TypeError, ValueError, UnicodeError):
            return _JSON.encode(doc)


def json_document(
    created: float, level: str, logger: str, pid: int | None, message: str
) -> dict[str, Any]:
    """The fields every JSON line starts with, in order."""
    return {
        "time": _utc(created),
        "level": level.lower(),
        "logger": logger,
        "pid": pid,
        "message": message,
    }


def direct_json_handler(logger: logging.Logger) -> TurnBufferedHandler | None:
    """The handler ``logger``'s INFO records reach, if handing it lines directly changes nothing.

    That is: the records would reach exactly one handler, a ``TurnBufferedHandler`` writing
    with ``JsonFormatter`` (the server's own set-up, off a terminal), and no filter of the
    logger or the handler could drop or change them. Anything else (another handler, a
    filter, a formatter of your own) gets records, as usual. Whether the logger is enabled
    for INFO at all is the caller's question (``Logger.isEnabledFor``).
    """
    if logger.disabled or logger.filters:
        return None
    found: TurnBufferedHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if handler.level > logging.INFO:
                continue
            if (
                found is not None
                or type(handler) is not TurnBufferedHandler
                or type(handler.formatter) is not JsonFormatter
                or handler.filters
            ):
                return None
            found = handler
        current = current.parent if current.propagate else None
    return found


class TextFormatter(logging.Formatter):
    """A line a person reads on a terminal, with control characters escaped."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        fields: dict[str, Any] | None = getattr(record, "access", None)
        if fields is None:
            text = record.getMessage()
        else:
            text = (
                f'{fields["client"] or "-"} "{fields["method"]} {fields["path"]}" '
                f"{fields['status']} {fields['latency_ms']:.1f}ms "
                f"rows={'-' if fields['rows'] is None else fields['rows']} "
                f"id={fields['request_id']}"
            )
        line = f"{stamp} {record.levelname:<7} {text.translate(_ESCAPES)}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def _utc(created: float) -> str:
    """RFC 3339 UTC with milliseconds, the form log pipelines parse without configuration."""
    return f"{_utc_second(int(created))}.{int(created % 1 * 1000):03d}Z"
