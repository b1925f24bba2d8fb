"""Real images of the models people have: a custom transformer (its module on a code path)
in front of LightGBM, built, run and queried with podman; and a model whose module nobody
can install, whose build must fail with the server's one-line error.

Needs podman and the local base image from ``.ci/container-setup.sh`` (see
``test_container.py``); marked ``container``. Each build installs the pinned wheels from
PyPI and ``libgomp1`` from Debian: a few minutes.
"""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.pipeline import make_pipeline
from typer.testing import CliRunner

from restpredict.cli import app
from tests.support.containers import build_image, podman, skip_without_podman, wait_ready
from tests.support.servers import free_port

pytestmark = pytest.mark.container
lgb = pytest.importorskip("lightgbm")

FEATURES = textwrap.dedent(
    """
    import numpy as np
    from sklearn.base import BaseEstimator, TransformerMixin


    class Ratios(BaseEstimator, TransformerMixin):
        def fit(self, X, y=None):
            self.n_features_in_ = np.asarray(X).shape[1]
            return self

        def transform(self, X):
            X = np.asarray(X, dtype=float)
            return np.column_stack([X, X[:, 0] / (1.0 + np.abs(X[:, 1]))])
    """
)
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def _pickle_with(module: str, directory: Path, model_path: Path) -> list[object]:
    """Fit Ratios + LightGBM with ``module`` importable from ``directory``; predictions on ROWS."""
    (directory / f"{module}.py").write_text(FEATURES)
    sys.path.insert(0, str(directory))
    try:
        ratios = __import__(module).Ratios
        iris = load_iris()
        model = make_pipeline(ratios(), lgb.LGBMClassifier(n_estimators=10, verbose=-1))
        model.fit(iris.data, iris.target)
        expected: list[object] = model.predict(np.array(ROWS)).tolist()
        joblib.dump(model, model_path)
    finally:
        sys.path.remove(str(directory))
        sys.modules.pop(module, None)
    return expected


@pytest.fixture(scope="module")
def custom_lgbm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[object]]]:
    """The running container's URL and the model's own predictions on ROWS."""
    skip_without_podman()
    project = tmp_path_factory.mktemp("custom-lgbm")
    code = project / "code"
    code.mkdir()
    model = project / "custom.joblib"
    expected = _pickle_with("features", code, model)
    context = project / "context"
    args = ["dockerize", str(model), "--code-path", str(code / "features.py"), "-o", str(context)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert "lightgbm==" in (context / "requirements.txt").read_text()
    assert "libgomp1" in (context / "Dockerfile").read_text()
    suffix = uuid.uuid4().hex[:8]
    image, container = f"localhost/rp-custom-{suffix}:test", f"rp-custom-{suffix}"
    port = free_port()
    try:
        build_image(context, image, timeout=1200)
        podman(
            "run",
            "-d",
            "--name",
            container,
            "--read-only",
            "--read-only-tmpfs=false",
            "--tmpfs",
            "/tmp:rw,size=64m,mode=1777",
            "--cap-drop=ALL",
            "--network",
            "slirp4netns",
            "-p",
            f"127.0.0.1:{port}:8080",
            image,
        )
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, container)
        yield url, expected
        logs = podman("logs", container, check=False)
        first = (logs.stdout + logs.stderr).strip().splitlines()[0]
        assert json.loads(first)["logger"], first  # JSON from the first line, no banner
        size = podman("image", "inspect", "--format", "{{.Size}}", image).stdout.strip()
        print(f"\ncustom + LightGBM image: {int(size) / 1e6:.0f} MB")
    finally:
        podman("rm", "-f", "-t", "2", container, check=False)
        podman("rmi", "-f", image, check=False)


def test_custom_code_and_lightgbm_serve_from_the_image(
    custom_lgbm: tuple[str, list[object]],
) -> None:
    url, expected = custom_lgbm
    response = httpx.post(f"{url}/predict", json={"features": ROWS}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}
    meta = httpx.get(f"{url}/metadata", timeout=10).json()
    assert meta["estimator"] == "Pipeline(Ratios, LGBMClassifier)"


def test_a_model_whose_module_nobody_provides_fails_the_build(tmp_path: Path) -> None:
    skip_without_podman()
    model = tmp_path / "orphan.joblib"
    module = f"helpers_{uuid.uuid4().hex[:6]}"
    (tmp_path / "elsewhere").mkdir()
    _pickle_with(module, tmp_path / "elsewhere", model)
    context = tmp_path / "context"
    # dockerize can load it (the module is importable here), but nothing can put it in an image.
    sys.path.insert(0, str(tmp_path / "elsewhere"))
    try:
        result = CliRunner().invoke(app, ["dockerize", str(model), "-o", str(context)])
    finally:
        sys.path.remove(str(tmp_path / "elsewhere"))
        sys.modules.pop(module, None)
    assert result.exit_code == 0, result.stderr
    assert module in result.stderr and "build will fail" in result.stderr
    image = f"localhost/rp-orphan-{uuid.uuid4().hex[:8]}:test"
    with pytest.raises(AssertionError) as failed:
        build_image(context, image, timeout=1200)
    assert f"the pickle needs module '{module}'" in str(failed.value)
    assert "--code-path" in str(failed.value)
    assert podman("image", "exists", image, check=False).returncode != 0
