"""The model repository routes in /openapi.json: documented when on, and what the server
answers matches what they say."""

from __future__ import annotations

import shutil
from pathlib import Path

from starlette.testclient import TestClient

from restpredict.app import create_app
from restpredict.model.loading import LoadedModel
from restpredict.openapi.document import openapi_document
from restpredict.settings import Settings
from tests.openapi.test_protection import check

PATHS = [
    "/v2/repository/index",
    "/v2/repository/models/{name}/load",
    "/v2/repository/models/{name}/unload",
]


def test_the_routes_are_documented_only_when_on(iris: LoadedModel) -> None:
    assert not set(PATHS) & set(openapi_document(iris, Settings())["paths"])
    on = openapi_document(iris, Settings(repository_api=True))["paths"]
    assert [on[path]["post"]["operationId"] for path in PATHS] == [
        "v2RepositoryIndex",
        "v2RepositoryLoad",
        "v2RepositoryUnload",
    ]


def test_every_answer_is_the_documented_one(
    tmp_path: Path, iris_path: Path, regressor_path: Path
) -> None:
    for path in (iris_path, regressor_path):
        shutil.copy(path, tmp_path / path.name)
    with TestClient(create_app(Settings(model_dir=tmp_path))) as client:
        doc = client.get("/openapi.json").json()
        index, load, unload = PATHS
        answers = [
            (index, client.post("/v2/repository/index", json={"ready": True})),
            (index, client.post("/v2/repository/index", content=b"{")),
            (unload, client.post("/v2/repository/models/iris/unload")),
            (unload, client.post("/v2/repository/models/iris/unload")),
            (load, client.post("/v2/repository/models/iris/load")),
            (load, client.post("/v2/repository/models/ghost/load")),
            (load, client.post("/v2/repository/models/iris/load", json={"parameters": {"a": 1}})),
        ]
        assert [a.status_code for _, a in answers] == [200, 400, 200, 404, 200, 404, 400]
        for path, answer in answers:
            check(doc, path, "post", answer)
