from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from restpredict.sources.cache import Cache, tree_digest


def _fill(data: bytes):
    return lambda target: target.write_bytes(data)


def test_store_then_lookup_by_stamp(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    entry = cache.store(
        "s3://b/m.pkl", name="m.pkl", stamp="ETag=1", display="s3://b/m.pkl", fill=_fill(b"one")
    )
    assert entry.path.read_bytes() == b"one"
    assert entry.digest == tree_digest(entry.path)
    assert cache.lookup("s3://b/m.pkl", "ETag=1") == entry
    assert cache.lookup("s3://b/m.pkl", "ETag=2") is None  # changed remotely
    assert cache.lookup("s3://b/m.pkl", None) is None  # no stamp: never trusted
    assert cache.lookup("s3://b/m.pkl", None, any_stamp=True) == entry  # offline
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700


def test_tampered_or_removed_content_is_a_miss(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    entry = cache.store("k", name="m.pkl", stamp="s", display="k", fill=_fill(b"good"))
    entry.path.write_bytes(b"evil")
    assert cache.lookup("k", "s") is None
    entry.path.unlink()
    assert cache.lookup("k", "s", any_stamp=True) is None


def test_a_failed_fill_leaves_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path)

    def broken(target: Path) -> None:
        target.write_bytes(b"half")
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        cache.store("k", name="m.pkl", stamp="s", display="k", fill=broken)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert cache.lookup("k", "s", any_stamp=True) is None


def test_two_versions_kept_and_abandoned_downloads_removed(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    first = cache.store("k", name="m.pkl", stamp="1", display="k", fill=_fill(b"1"))
    abandoned = first.path.parent.parent / ".partial-killed"
    abandoned.mkdir()
    os.utime(abandoned, (0, 0))
    second = cache.store("k", name="m.pkl", stamp="2", display="k", fill=_fill(b"2"))
    third = cache.store("k", name="m.pkl", stamp="3", display="k", fill=_fill(b"3"))
    assert third.path.exists() and second.path.exists()
    assert not first.path.exists()
    assert not abandoned.exists()


def test_the_source_text_is_stored_only_hashed(tmp_path: Path) -> None:
    secret = "https://h/m.pkl?sig=TOPSECRET"
    Cache(tmp_path).store(
        secret, name="m.pkl", stamp="s", display="https://h/m.pkl?sig=***", fill=_fill(b"x")
    )
    for path in tmp_path.rglob("*"):
        assert "TOPSECRET" not in path.name
        if path.is_file():
            assert b"TOPSECRET" not in path.read_bytes()
