"""The supervisor's report to its workers: written atomically, read back, degraded headers."""

from __future__ import annotations

from pathlib import Path

from restpredict.asgi.fleet import (
    FleetStatus,
    ReloadRequest,
    Rollout,
    degraded_headers,
    fleet_status,
    read_reload_requests,
    write_fleet,
    write_reload_request,
)


def test_a_status_reads_back_and_says_degraded(tmp_path: Path) -> None:
    assert fleet_status(tmp_path) is None and fleet_status(None) is None
    status = FleetStatus(wanted=2, serving=1, sha256="a" * 64, rollout=Rollout("a", "b", 0, 2))
    write_fleet(tmp_path, status)
    read = fleet_status(tmp_path)
    assert read == status and read is not None and read.degraded
    assert degraded_headers(read) == {"X-Degraded": "1/2 workers serving"}
    assert degraded_headers(FleetStatus(wanted=2, serving=2, sha256="a")) == {}
    assert [p.name for p in tmp_path.iterdir()] == ["fleet.json"]  # no partial file left


def test_reload_requests_are_taken_once_oldest_first(tmp_path: Path) -> None:
    write_reload_request(tmp_path, ReloadRequest("id1", "b" * 64, allow_schema_change=True))
    write_reload_request(tmp_path, ReloadRequest("id2"))
    assert read_reload_requests(tmp_path) == [
        ReloadRequest("id1", "b" * 64, True),
        ReloadRequest("id2"),
    ]
    assert read_reload_requests(tmp_path) == []
