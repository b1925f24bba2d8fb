from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from restpredict.errors import UnsafeArchiveError
from restpredict.sources.archives import extract


def _tar(path: Path, entries: list[tarfile.TarInfo], data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info in entries:
            if info.isfile():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def _entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def test_tar_unpacks(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "m.tar.gz", [_entry("m/model.pkl"), _entry("m/MLmodel")])
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "m" / "model.pkl").read_bytes() == b"x"


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(_entry("../evil.pkl"), id="dotdot"),
        pytest.param(_entry("m/../../evil.pkl"), id="dotdot-inside"),
        pytest.param(_entry("/etc/evil"), id="absolute"),
        pytest.param(_entry("link", tarfile.SYMTYPE, "../../etc/passwd"), id="symlink-out"),
        pytest.param(_entry("link", tarfile.SYMTYPE, "/etc/passwd"), id="symlink-absolute"),
        pytest.param(_entry("hard", tarfile.LNKTYPE, "../outside"), id="hardlink-out"),
        pytest.param(_entry("dev", tarfile.CHRTYPE), id="device"),
    ],
)
def test_tar_refuses_entries_reaching_out(tmp_path: Path, entry: tarfile.TarInfo) -> None:
    archive = _tar(tmp_path / "bad.tar.gz", [_entry("model.pkl"), entry])
    with pytest.raises(UnsafeArchiveError) as caught:
        extract(archive, tmp_path / "out")
    assert "bad.tar.gz" in caught.value.detail
    assert not (tmp_path / "evil.pkl").exists()
    assert list((tmp_path / "out").iterdir()) == []  # checked before anything was written


def test_tar_size_and_count_limits(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "big.tar.gz", [_entry("a.pkl"), _entry("b.pkl")], b"x" * 100)
    with pytest.raises(UnsafeArchiveError, match="more than 150"):
        extract(archive, tmp_path / "o1", max_bytes=150)
    with pytest.raises(UnsafeArchiveError, match="2 entries"):
        extract(archive, tmp_path / "o2", max_members=1)


def test_zip_unpacks_and_refuses_traversal(tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("model/model.pkl", b"x")
    extract(good, tmp_path / "out")
    assert (tmp_path / "out" / "model" / "model.pkl").read_bytes() == b"x"
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../evil.pkl", b"x")
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract(bad, tmp_path / "out2")
    assert not (tmp_path / "evil.pkl").exists()


def test_zip_refuses_symlinks(tmp_path: Path) -> None:
    bad = tmp_path / "link.zip"
    info = zipfile.ZipInfo("link")
    info.external_attr = (0o120777) << 16
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="links"):
        extract(bad, tmp_path / "out")


def test_not_an_archive(tmp_path: Path) -> None:
    fake = tmp_path / "fake.tar.gz"
    fake.write_bytes(b"not gzip")
    with pytest.raises(UnsafeArchiveError, match="not a readable tar"):
        extract(fake, tmp_path / "out")
