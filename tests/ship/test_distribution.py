"""restpredict's own wheel and its pinned dependency closure, as shipped in a build context."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from restpredict._version import __version__
from restpredict.ship.distribution import build_wheel, pinned_requirements, wheel_name

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pip_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from this source tree: the reference for what belongs in one."""
    out = tmp_path_factory.mktemp("pip-wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("restpredict-*.whl")
    return wheel


def package_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name for name in archive.namelist() if not name.startswith("restpredict-")}


def test_rebuilt_wheel_has_the_files_pip_puts_in_one(tmp_path: Path, pip_wheel: Path) -> None:
    ours = build_wheel(tmp_path)
    assert ours.name == wheel_name() == f"restpredict-{__version__}-py3-none-any.whl"
    assert package_files(ours) == package_files(pip_wheel)
    assert "restpredict/templates/Dockerfile.j2" in package_files(ours)


def test_rebuilt_wheel_record_is_valid(tmp_path: Path) -> None:
    with zipfile.ZipFile(build_wheel(tmp_path)) as archive:
        dist_info = f"restpredict-{__version__}.dist-info"
        record = archive.read(f"{dist_info}/RECORD").decode().splitlines()
        listed = {line.split(",")[0]: line.split(",")[1:] for line in record}
        assert set(listed) == set(archive.namelist())
        for name, (digest, size) in listed.items():
            if name.endswith("RECORD"):
                continue
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + expected.decode()
            assert int(size) == len(data)
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        assert f"Version: {__version__}" in metadata
        assert (
            "restpredict = restpredict.cli:app"
            in archive.read(f"{dist_info}/entry_points.txt").decode()
        )


def test_rebuilt_wheel_is_reproducible(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = build_wheel(tmp_path / "a"), build_wheel(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()


def run_from_wheel(wheel: Path, code: str, cwd: Path) -> str:
    """Run Python with only ``wheel`` providing restpredict (zip import, not the source tree)."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={"PYTHONPATH": str(wheel), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_templates_load_from_an_installed_wheel(tmp_path: Path, pip_wheel: Path) -> None:
    code = """
import restpredict
from restpredict.ship.dockerize import ModelFacts, plan_build, render_dockerfile, render_manifests
from restpredict.ship.deploy_settings import load_deploy_settings
plan = plan_build(load_deploy_settings(), ModelFacts("m.joblib", "ab" * 32, "1.9.1"))
print(restpredict.__file__)
kinds = [line for line in render_manifests(plan).splitlines() if line.startswith("kind: ")]
print(render_dockerfile(plan).count("FROM "), len(kinds))
"""
    where, counts = run_from_wheel(pip_wheel, code, tmp_path).splitlines()
    assert where.startswith(str(pip_wheel))  # imported from the wheel, not the worktree
    assert counts == "2 4"


def test_wheel_rebuilds_from_an_installed_wheel(tmp_path: Path, pip_wheel: Path) -> None:
    """The same function works when restpredict is a plain install, not an editable one."""
    code = f"""
from pathlib import Path
from restpredict.ship.distribution import build_wheel
print(build_wheel(Path({str(tmp_path)!r})))
"""
    rebuilt = Path(run_from_wheel(pip_wheel, code, tmp_path).strip())
    assert package_files(rebuilt) == package_files(pip_wheel)


def test_pins_are_the_installed_closure() -> None:
    pins = pinned_requirements()
    for name in ("scikit-learn", "numpy", "scipy", "joblib", "threadpoolctl", "uvicorn"):
        assert pins[name] == importlib.metadata.version(name)
    assert "httptools" in pins  # uvicorn[standard]'s extra is followed
    assert all(pins[name] == importlib.metadata.version(name) for name in pins)
    for test_only in ("pytest", "hypothesis", "ruff", "skops", "restpredict"):
        assert test_only not in pins


def test_skops_extra_adds_its_closure() -> None:
    assert {"skops"} <= pinned_requirements(["skops"]).keys() - pinned_requirements().keys()
