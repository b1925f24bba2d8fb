"""``restpredict predict --url`` and ``info --url`` against a server that wants an API key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import running_server

KEY = "client-side-key-0123"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RESTPREDICT_")}
    return subprocess.run(
        [sys.executable, "-m", "restpredict", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
    )


def test_predict_and_info_send_the_key_from_a_file_or_the_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    with running_server("--api-key-file", str(key_file)) as url:
        row = ["--url", url, "--features", "5.1,3.5,1.4,0.2", "--output", "json"]
        refused = _cli("predict", *row)
        assert refused.returncode != 0 and "401" in refused.stderr
        assert "Traceback" not in refused.stderr
        by_file = _cli("predict", *row, "--api-key-file", str(key_file))
        assert by_file.returncode == 0, by_file.stderr
        assert json.loads(by_file.stdout) == {"prediction": "setosa"}
        by_env = _cli("predict", *row, env={"RESTPREDICT_API_KEY": KEY})
        assert by_env.returncode == 0, by_env.stderr
        info = _cli("info", "--url", url, "--json", env={"RESTPREDICT_API_KEY": KEY})
        assert info.returncode == 0 and json.loads(info.stdout)["n_features"] == 4
        assert KEY not in by_file.stdout + by_file.stderr + refused.stderr


@pytest.mark.parametrize("flag", ["--api-key", "--key"])
def test_no_plain_key_flag(flag: str) -> None:
    result = _cli("predict", "--url", "http://127.0.0.1:9", "--features", "1", flag, KEY)
    assert result.returncode != 0 and "No such option" in result.stderr
