"""MLflow's scoring protocol against a real server process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from restpredict.model.loading import LoadedModel
from tests.routes.test_mlflow import COLUMNS, ROWS, error
from tests.support.servers import ServerProcess


def test_json_and_csv_against_a_real_server(
    serve: Callable[..., ServerProcess], iris_path: Path, iris: LoadedModel
) -> None:
    server = serve(str(iris_path))
    expected = {"predictions": iris.estimator.predict(np.array(ROWS)).tolist()}
    split = {"dataframe_split": {"columns": COLUMNS, "data": ROWS}}
    assert httpx.post(f"{server.url}/invocations", json=split).json() == expected
    csv = ",".join(COLUMNS) + "\n" + "\n".join(",".join(map(str, row)) for row in ROWS) + "\n"
    response = httpx.post(
        f"{server.url}/invocations", content=csv, headers={"Content-Type": "text/csv"}
    )
    assert response.json() == expected
    assert httpx.get(f"{server.url}/ping").status_code == 200
    wrong = httpx.post(f"{server.url}/invocations", json={"instances": [[1, 2, 3]]})
    assert error(wrong, 400) == "expected 4 features per row, got 3"
