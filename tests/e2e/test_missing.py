"""Missing values (JSON null) through a real server process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import tests.model.test_missing as unit
from restpredict.model.loading import LoadedModel
from tests.model.test_missing import HGB_ROWS, _hgb_matrix, _hgb_requests, _predictions
from tests.support.servers import ServerProcess

# Fixtures shared with the unit tests of the same module.
hgb = unit.hgb
hgb_path = unit.hgb_path


def test_real_server_takes_null(
    serve: Callable[..., ServerProcess], hgb_path: Path, hgb: LoadedModel
) -> None:
    server = serve(str(hgb_path))
    expected = hgb.estimator.predict(_hgb_matrix(HGB_ROWS)).tolist()
    for path, body in _hgb_requests(HGB_ROWS)[:5]:
        got = _predictions(path, httpx.post(server.url + path, json=body, timeout=30))
        assert got == pytest.approx(expected, rel=1e-12), path
    metadata = httpx.get(f"{server.url}/metadata").json()
    assert metadata["feature_nullable"] == [True, True, True]
