"""What the supervisor of several workers tells them: a small JSON file it rewrites atomically.

The supervisor (``server.supervisor``) is the only writer; any worker reads the file when a
client asks (readiness, ``/metadata``, ``POST /admin/reload``). A file rather than shared
memory: it survives nothing the workers do, needs no lock (``os.replace`` is atomic) and an
operator can ``cat`` it. Reading it costs a few microseconds, only on those routes.

- ``wanted`` / ``serving``: workers asked for and workers up. Fewer serving than wanted is the
  *degraded* state: readiness still answers 200 (the server answers; a 503 would pull the whole
  instance out of its load balancer) but says so in the ``X-Degraded`` header and body.
- ``rollout``: set while a rolling reload replaces workers, so ``/metadata`` states which
  SHA-256 is rolling in instead of alternating silently between two.
- ``answers``: the outcomes of the last requests the supervisor was asked for (a reload, a
  repository load or unload), each with the ids of the requests it answers; a worker waits for
  its id (``ask_supervisor``). Reloads that arrive together (before the supervisor reads them)
  are answered by one reload, made with the latest request's parameters.
- ``index``: with several models, the repository index (every name and version, its state and
  why), so ``POST /v2/repository/index`` answers the same whichever worker takes it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Literal

import msgspec

__all__ = [
    "DEGRADED_HEADER",
    "FleetStatus",
    "IndexEntry",
    "ReloadOutcome",
    "ReloadRequest",
    "Rollout",
    "ask_supervisor",
    "degraded_headers",
    "fleet_status",
    "kept_answers",
    "read_fleet",
    "read_reload_requests",
    "write_fleet",
    "write_reload_request",
]

DEGRADED_HEADER = "X-Degraded"
_STATUS = "fleet.json"
_REQUEST = "reload-request-"
_ANSWERS_KEPT = 32  # outcomes kept in the file: more than requests that arrive together


class Rollout(msgspec.Struct):
    """A rolling reload under way: workers still on ``from_sha256`` are being replaced."""

    from_sha256: str
    to_sha256: str
    replaced: int
    workers: int


class ReloadOutcome(msgspec.Struct):
    """How the supervisor answered the requests with these ids (none for a SIGHUP)."""

    ids: list[str]
    accepted: bool
    detail: str
    sha256: str  # the model serving (or rolling in) afterwards; several models: their set's
    model: str
    status: int = 409  # of a refusal: 404 for a model that is not configured or not loaded


class IndexEntry(msgspec.Struct, omit_defaults=True):
    """One name and version of the repository index, as the supervisor sees it."""

    name: str
    state: str
    reason: str = ""
    version: str | None = None


class FleetStatus(msgspec.Struct):
    """The supervisor's view of its workers, as the workers report it to clients."""

    wanted: int
    serving: int
    sha256: str
    rollout: Rollout | None = None
    answers: list[ReloadOutcome] = msgspec.field(default_factory=list)
    index: list[IndexEntry] | None = None
    problem: str | None = None  # why fewer workers serve than wanted

    @property
    def degraded(self) -> bool:
        return self.serving < self.wanted


class ReloadRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A worker's ``POST /admin/reload`` or repository load or unload of ``name``, handed to
    the supervisor with a SIGHUP."""

    id: str
    sha256: str | None = None
    allow_schema_change: bool = False
    action: Literal["reload", "load", "unload"] = "reload"
    name: str | None = None


def kept_answers(answers: list[ReloadOutcome]) -> list[ReloadOutcome]:
    """The newest outcomes, as many as the file keeps."""
    return answers[-_ANSWERS_KEPT:]


def write_fleet(directory: Path, status: FleetStatus) -> None:
    _write(directory / _STATUS, msgspec.json.encode(status))


def read_fleet(directory: Path) -> FleetStatus | None:
    """The last status written, or None before the first (or if it cannot be read)."""
    try:
        return msgspec.json.decode((directory / _STATUS).read_bytes(), type=FleetStatus)
    except (OSError, msgspec.DecodeError):
        return None


def fleet_status(directory: Path | None) -> FleetStatus | None:
    """The status in ``directory`` (a worker's ``ServingState.fleet_dir``); None for one worker."""
    return None if directory is None else read_fleet(directory)


def degraded_headers(status: FleetStatus | None) -> dict[str, str]:
    """``X-Degraded: 1/2 workers serving`` on a readiness answer while workers are missing."""
    if status is None or not status.degraded:
        return {}
    return {DEGRADED_HEADER: f"{status.serving}/{status.wanted} workers serving"}


async def ask_supervisor(
    pid: int, directory: Path, request: ReloadRequest, wait: float
) -> ReloadOutcome | None:
    """Hand ``request`` to the supervisor and wait for its verdict (written by id); None if
    none came within ``wait`` seconds (``reload_timeout``: preparing, verifying and, for the
    repository API, rolling onto new models)."""
    write_reload_request(directory, request)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        status = read_fleet(directory)
        for answer in status.answers if status is not None else []:
            if request.id in answer.ids:
                return answer
    return None


def write_reload_request(directory: Path, request: ReloadRequest) -> None:
    _write(
        directory / f"{_REQUEST}{time.time_ns()}-{request.id}.json", msgspec.json.encode(request)
    )


def read_reload_requests(directory: Path) -> list[ReloadRequest]:
    """The pending requests, oldest first, taken (removed): a later SIGHUP does not reuse them."""
    requests = []
    for path in sorted(directory.glob(f"{_REQUEST}*.json")):
        try:
            data = path.read_bytes()
            path.unlink()
            requests.append(msgspec.json.decode(data, type=ReloadRequest))
        except (OSError, msgspec.DecodeError):
            continue
    return requests


def _write(path: Path, data: bytes) -> None:
    """Write-then-rename: a reader sees the old file or the new one, never half of one."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_bytes(data)
    os.replace(partial, path)
