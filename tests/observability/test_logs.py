"""Log formatters and the logging configuration, rendered to strings."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
from typing import Any

import pytest

from restpredict.errors import ConfigError
from restpredict.observability.logs import (
    ACCESS_LOGGER,
    JsonFormatter,
    TextFormatter,
    TurnBufferedHandler,
    direct_json_handler,
    logging_config,
    resolve_format,
)
from restpredict.settings import Settings, load_settings

ACCESS = {
    "method": "POST",
    "path": "/predict",
    "route": "/predict",
    "status": 200,
    "latency_ms": 1.234,
    "rows": 3,
    "request_id": "abc-123",
    "client": "127.0.0.1:50000",
}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def record(message: str, access: dict[str, Any] | None = None, **kwargs: Any) -> logging.LogRecord:
    rec = logging.LogRecord("restpredict.access", logging.INFO, __file__, 1, message, (), None)
    if access is not None:
        rec.access = access
    rec.__dict__.update(kwargs)
    return rec


def test_json_line_carries_the_access_fields() -> None:
    line = JsonFormatter().format(record("POST /predict 200", ACCESS))
    assert "\n" not in line
    doc = json.loads(line)
    assert doc | {"time": "", "pid": 0} == {
        "time": "",
        "level": "info",
        "logger": "restpredict.access",
        "pid": 0,
        "message": "POST /predict 200",
        **ACCESS,
    }
    assert doc["time"].endswith("Z") and len(doc["time"]) == len("2024-01-01T00:00:00.000Z")


def test_json_escapes_a_forged_line() -> None:
    line = JsonFormatter().format(record('GET /a\n{"level": "error"} 404'))
    assert "\n" not in line
    assert json.loads(line)["message"] == 'GET /a\n{"level": "error"} 404'


def test_json_takes_what_the_fast_encoder_refuses() -> None:
    # A lone surrogate is not UTF-8: msgspec refuses it, the standard library escapes it.
    line = JsonFormatter().format(record("bad \ud800 text"))
    assert json.loads(line)["message"] == "bad \ud800 text"


def test_text_line_for_people() -> None:
    line = TextFormatter().format(record("POST /predict 200", ACCESS))
    assert line.endswith(' INFO    127.0.0.1:50000 "POST /predict" 200 1.2ms rows=3 id=abc-123')


def test_text_line_without_rows_or_client() -> None:
    line = TextFormatter().format(record("x", ACCESS | {"rows": None, "client": None}))
    assert '- "POST /predict" 200 1.2ms rows=- id=abc-123' in line


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/a\nFAKE line", id="newline"),
        pytest.param("/a\rFAKE", id="carriage-return"),
        pytest.param("/a\x1b[31mred", id="ansi-escape"),
        pytest.param("/a\u2028FAKE", id="line-separator"),
    ],
)
def test_text_escapes_control_characters(path: str) -> None:
    line = TextFormatter().format(record(f"GET {path}", ACCESS | {"path": path}))
    assert line.splitlines() == [line]
    assert "\x1b" not in line and "\r" not in line


def test_text_line_for_other_loggers_and_exceptions() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = record("Started server process [1]", exc_info=sys.exc_info())
    text = TextFormatter().format(rec)
    first, *rest = text.splitlines()
    assert first.endswith("INFO    Started server process [1]")
    assert "ValueError: boom" in rest[-1]


@pytest.mark.parametrize(
    ("setting", "stream", "expected"),
    [
        pytest.param("auto", io.StringIO(), "json", id="auto-pipe"),
        pytest.param("auto", Terminal(), "text", id="auto-terminal"),
        pytest.param("json", Terminal(), "json", id="json-on-terminal"),
        pytest.param("text", io.StringIO(), "text", id="text-on-pipe"),
    ],
)
def test_format_choice(setting: str, stream: io.StringIO, expected: str) -> None:
    assert resolve_format(setting, stream) == expected


@pytest.mark.usefixtures("restored_logging")
def test_logging_config_applies() -> None:
    settings = Settings(log_format="json", log_level="warning")
    config = logging_config(settings, Terminal())
    logging.config.dictConfig(config)
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler.formatter, JsonFormatter)
    assert logging.getLogger().level == logging.WARNING
    assert logging.getLogger("uvicorn.access").handlers == []
    assert logging.getLogger("uvicorn.access").propagate is False


def test_auto_on_a_terminal_configures_text() -> None:
    config = logging_config(Settings(), Terminal())
    assert (
        config["formatters"]["restpredict"]["()"] == "restpredict.observability.logs.TextFormatter"
    )


@pytest.mark.parametrize(
    ("environ", "field", "expected"),
    [
        pytest.param({"RESTPREDICT_LOG_FORMAT": "text"}, "log_format", "text", id="format"),
        pytest.param({"RESTPREDICT_ACCESS_LOG": "false"}, "access_log", False, id="access-log"),
    ],
)
def test_settings_from_environment(environ: dict[str, str], field: str, expected: Any) -> None:
    assert getattr(load_settings(environ=environ), field) == expected


def test_unknown_log_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="RESTPREDICT_LOG_FORMAT"):
        load_settings(environ={"RESTPREDICT_LOG_FORMAT": "xml"})


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def buffered_logger(stream: io.StringIO) -> tuple[logging.Logger, TurnBufferedHandler]:
    handler = TurnBufferedHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"restpredict.test.{id(stream)}")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    return logger, handler


def test_lines_of_one_loop_turn_are_written_together_in_order() -> None:
    stream = CountingStream()
    logger, _ = buffered_logger(stream)

    async def one_turn() -> str:
        for i in range(5):
            logger.info("line %d", i)
        seen = stream.getvalue()  # nothing written yet: the turn is not over
        await asyncio.sleep(0)
        return seen

    assert asyncio.run(one_turn()) == ""
    assert stream.getvalue() == "".join(f"line {i}\n" for i in range(5))
    assert stream.writes == 1


def test_lines_off_the_loop_are_written_at_once_after_pending_ones() -> None:
    stream = CountingStream()
    logger, _ = buffered_logger(stream)

    async def mixed() -> None:
        logger.info("on the loop")
        await asyncio.to_thread(logger.info, "from a thread")  # written now, after the first

    asyncio.run(mixed())
    logger.info("no loop")
    assert stream.getvalue() == "on the loop\nfrom a thread\nno loop\n"


def test_flush_writes_what_is_pending() -> None:
    stream = CountingStream()
    logger, handler = buffered_logger(stream)

    async def pending_then_flush() -> str:
        logger.info("pending")
        handler.flush()  # logging.shutdown() at exit does this
        return stream.getvalue()

    assert asyncio.run(pending_then_flush()) == "pending\n"


def test_json_lines_added_directly_are_the_formatter_s_lines() -> None:
    """``add_json_lines`` writes what ``JsonFormatter`` writes for the same fields."""
    stream = io.StringIO()
    handler = TurnBufferedHandler(stream)
    line = JsonFormatter().format(record("POST /predict 200", ACCESS))
    handler.add_json_lines([json.loads(line)])  # off the loop: written at once
    assert stream.getvalue() == line + "\n"
    handler.add_json_lines([{"message": "GET /x \ud800 404"}])  # msgspec refuses: stdlib's
    assert json.loads(stream.getvalue().splitlines()[1]) == {"message": "GET /x \ud800 404"}


@pytest.mark.usefixtures("restored_logging")
def test_the_access_log_goes_straight_to_the_server_s_own_json_handler_only() -> None:
    logging.config.dictConfig(logging_config(Settings(log_format="json"), io.StringIO()))
    (handler,) = logging.getLogger().handlers
    access = logging.getLogger(ACCESS_LOGGER)
    assert direct_json_handler(access) is handler

    def records_needed(change: Any, undo: Any) -> None:
        change()
        try:
            assert direct_json_handler(access) is None
        finally:
            undo()
        assert direct_json_handler(access) is handler

    def keep(rec: logging.LogRecord) -> bool:
        return True

    root = logging.getLogger()
    other = logging.StreamHandler(io.StringIO())
    records_needed(lambda: access.addFilter(keep), lambda: access.removeFilter(keep))
    records_needed(lambda: handler.addFilter(keep), lambda: handler.removeFilter(keep))
    records_needed(lambda: root.addHandler(other), lambda: root.removeHandler(other))
    records_needed(lambda: access.addHandler(other), lambda: access.removeHandler(other))
    text = TextFormatter()
    records_needed(
        lambda: handler.setFormatter(text), lambda: handler.setFormatter(JsonFormatter())
    )
    # A handler that INFO does not reach changes nothing; without handlers there is none.
    other.setLevel(logging.WARNING)
    root.addHandler(other)
    assert direct_json_handler(access) is handler
    root.handlers[:] = []
    assert direct_json_handler(access) is None
