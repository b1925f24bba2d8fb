"""Custom code: a pipeline whose transformer lives in the user's own ``features.py``.

The module is written by the test into a temporary directory, the pipeline pickled, and
the module then forgotten, so the server processes can import it only through
``--code-path`` (or ``code_paths:`` in restpredict.yaml).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from restpredict.errors import ExitCode

FEATURES = textwrap.dedent(
    '''
    """A user's feature engineering: the pickle refers to features.Ratios."""
    import numpy as np
    from sklearn.base import BaseEstimator, TransformerMixin


    class Ratios(BaseEstimator, TransformerMixin):
        def fit(self, X, y=None):
            self.n_features_in_ = np.asarray(X).shape[1]
            return self

        def transform(self, X):
            X = np.asarray(X, dtype=float)
            return np.column_stack([X, X[:, 0] / (1.0 + np.abs(X[:, 1]))])
    '''
)
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, list[str]]]:
    """(model file, features.py, the model's own predictions on ROWS)."""
    code = tmp_path_factory.mktemp("code")
    (code / "features.py").write_text(FEATURES)
    sys.path.insert(0, str(code))
    try:
        import features  # type: ignore[import-not-found]

        iris = load_iris()
        model = make_pipeline(features.Ratios(), LogisticRegression(max_iter=1000))
        model.fit(iris.data, iris.target_names[iris.target])
        expected = model.predict(np.array(ROWS)).tolist()
        path = tmp_path_factory.mktemp("models") / "custom.joblib"
        joblib.dump(model, path)
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("features", None)
    yield path, code / "features.py", expected


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "restpredict", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_without_code_path_one_line_names_module_and_flag(
    custom: tuple[Path, Path, list[str]],
) -> None:
    model, _, _ = custom
    done = _cli("serve", str(model), "--port", "1")
    assert done.returncode == ExitCode.STARTUP
    line = done.stderr.strip()
    assert "module 'features'" in line and "--code-path" in line
    assert "Traceback" not in done.stderr and len(line.splitlines()) == 1


def test_a_missing_class_is_named(custom: tuple[Path, Path, list[str]], tmp_path: Path) -> None:
    model, _, _ = custom
    (tmp_path / "features.py").write_text("# the class was renamed\n")
    done = _cli("info", str(model), "--code-path", str(tmp_path / "features.py"))
    assert done.returncode == ExitCode.STARTUP
    assert "class 'Ratios'" in done.stderr and "--code-path" in done.stderr


def test_predict_info_init_and_dockerize_take_code_paths(
    custom: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    model, features, expected = custom
    code = ["--code-path", str(features.parent)]  # a directory of modules works too
    done = _cli("predict", "--model", str(model), "-f", "5.1,3.5,1.4,0.2", "-o", "json", *code)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["prediction"] == expected[0]

    info = _cli("info", str(model), "--json", "--code-path", str(features))
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["estimator"] == "Pipeline(Ratios, LogisticRegression)"

    config = tmp_path / "conf" / "restpredict.yaml"
    config.parent.mkdir()
    init = _cli("init", str(model), "-o", str(config), "--code-path", str(features))
    assert init.returncode == 0, init.stderr
    text = config.read_text()
    assert "code_paths:" in text and "features.py" in text
    served = _cli("predict", "--config", str(config), "-f", "6.7,3.0,5.2,2.3", "-o", "json")
    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout)["prediction"] == expected[1]

    out = tmp_path / "build"
    built = _cli("dockerize", "--config", str(config), "-o", str(out))
    assert built.returncode == 0, built.stderr
    assert (out / "code" / "features.py").read_text() == features.read_text()
    dockerfile = (out / "Dockerfile").read_text()
    assert "COPY --chown=0:0 code/ /opt/restpredict/code/" in dockerfile
    assert 'PYTHONPATH="/opt/restpredict/code"' in dockerfile
    assert '"--code-path", "/opt/restpredict/code/features.py"' in dockerfile
    assert "!code/" in (out / ".dockerignore").read_text()
