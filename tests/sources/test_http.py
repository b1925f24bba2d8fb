"""http(s):// sources against a local HTTP server that sends ETags."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from restpredict.errors import SourceAccessError, SourceNotFoundError, SourceUnavailableError
from restpredict.sources import remote, resolve
from tests.sources.helpers import same_answers
from tests.sources.servers import Served, http_server


@pytest.fixture
def served() -> Served:
    return Served()


@pytest.fixture
def base(served: Served) -> Iterator[str]:
    with http_server(served) as url:
        yield url


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "_BACKOFF", 0.01)


def test_file_with_etag_is_downloaded_once(
    served: Served, base: str, iris_path: Path, tmp_path: Path
) -> None:
    served.files["/m/iris.joblib"] = iris_path.read_bytes()
    first = resolve(f"{base}/m/iris.joblib?token=abc", cache_dir=tmp_path)
    second = resolve(f"{base}/m/iris.joblib?token=abc", cache_dir=tmp_path)
    assert served.gets["/m/iris.joblib"] == 1
    assert second.model_file == first.model_file
    assert first.source == f"{base}/m/iris.joblib?token=***"
    same_answers(first, iris_path)
    served.files["/m/iris.joblib"] = iris_path.read_bytes() + b""  # same bytes, same ETag
    resolve(f"{base}/m/iris.joblib?token=abc", cache_dir=tmp_path)
    assert served.gets["/m/iris.joblib"] == 1


def test_changed_file_is_fetched_again(
    served: Served, base: str, iris_path: Path, iris_int_path: Path, tmp_path: Path
) -> None:
    served.files["/iris.joblib"] = iris_path.read_bytes()
    first = resolve(f"{base}/iris.joblib", cache_dir=tmp_path)
    served.files["/iris.joblib"] = iris_int_path.read_bytes()
    second = resolve(f"{base}/iris.joblib", cache_dir=tmp_path)
    assert served.gets["/iris.joblib"] == 2
    assert second.model_file.read_bytes() == iris_int_path.read_bytes()
    assert first.model_file.read_bytes() == iris_path.read_bytes()  # previous version kept


def test_truncated_download_is_never_loaded(
    served: Served, base: str, iris_path: Path, tmp_path: Path
) -> None:
    served.files["/iris.joblib"] = iris_path.read_bytes()
    served.truncated.add("/iris.joblib")
    with pytest.raises(SourceUnavailableError) as caught:
        resolve(f"{base}/iris.joblib", cache_dir=tmp_path)
    assert caught.value.detail.startswith(f"{base}/iris.joblib: download failed after 3")
    assert served.gets["/iris.joblib"] == 3  # retried: a cut connection can pass
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []


def test_missing_and_forbidden(served: Served, base: str, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="not found"):
        resolve(f"{base}/nope.joblib", cache_dir=tmp_path)
    served.files["/secret.joblib"] = b"x"
    served.denied.add("/secret.joblib")
    with pytest.raises(SourceAccessError, match="access denied") as caught:
        resolve(f"{base}/secret.joblib?sig=TOPSECRET", cache_dir=tmp_path)
    assert "TOPSECRET" not in caught.value.detail
    assert served.gets == {}  # neither retried nor downloaded


def test_tarball_is_unpacked(served: Served, base: str, iris_path: Path, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(iris_path, arcname="iris/iris.joblib")
    served.files["/iris.tar.gz"] = buffer.getvalue()
    resolved = resolve(f"{base}/iris.tar.gz", cache_dir=tmp_path)
    assert resolved.model_file.name == "iris.joblib"
    assert resolved.name == "iris"
    same_answers(resolved, iris_path)


def test_tarball_with_dotdot_is_refused(served: Served, base: str, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../escaped.joblib")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    served.files["/evil.tar.gz"] = buffer.getvalue()
    with pytest.raises(Exception, match=r"evil.tar.gz: \.\./\.\./escaped.joblib: path outside"):
        resolve(f"{base}/evil.tar.gz", cache_dir=tmp_path / "cache")
    assert not any(p.name == "escaped.joblib" for p in tmp_path.rglob("*"))
