"""Open Inference V2 against a real server process, with tritonclient among the clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from restpredict.model.loading import LoadedModel
from tests.routes.test_open_inference import ROWS
from tests.support.models import frame_data
from tests.support.servers import running_server


@pytest.fixture(scope="module")
def triton_iris(iris_path: Path) -> Iterator[triton.InferenceServerClient]:
    """tritonclient talking to a real ``restpredict serve iris.joblib``."""
    with running_server(str(iris_path)) as url:
        client = triton.InferenceServerClient(url.removeprefix("http://"))
        yield client
        client.close()


def text(values: np.ndarray) -> list[str]:
    """tritonclient gives BYTES as bytes (binary) or str (JSON); compare as text."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values.ravel()]


def infer_input(name: str, array: np.ndarray, datatype: str, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def test_health_and_server_metadata(triton_iris: triton.InferenceServerClient) -> None:
    assert triton_iris.is_server_live()
    assert triton_iris.is_server_ready()
    assert triton_iris.is_model_ready("iris")
    assert not triton_iris.is_model_ready("other")
    metadata = triton_iris.get_server_metadata()
    assert metadata["name"] == "restpredict"
    assert "binary_tensor_data" in metadata["extensions"]


def test_model_metadata_comes_from_the_estimator(
    triton_iris: triton.InferenceServerClient, iris: LoadedModel
) -> None:
    metadata = triton_iris.get_model_metadata("iris")
    assert metadata["name"] == "iris"
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert metadata["outputs"] == [
        {"name": "predict", "datatype": "BYTES", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
    ]
    assert metadata["properties"]["sha256"] == iris.sha256
    assert "versions" not in metadata  # one unversioned model


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
def test_tritonclient_gets_the_models_predictions(
    triton_iris: triton.InferenceServerClient, iris: LoadedModel, binary: bool, datatype: str
) -> None:
    rows = ROWS.astype(np.float32 if datatype == "FP32" else np.float64)
    outputs = [
        triton.InferRequestedOutput("predict", binary_data=binary),
        triton.InferRequestedOutput("predict_proba", binary_data=binary),
    ]
    result = triton_iris.infer(
        "iris", [infer_input("input-0", rows, datatype, binary)], outputs=outputs, request_id="r-1"
    )
    expected = rows.astype(np.float64)  # what the server hands the model
    assert text(result.as_numpy("predict")) == iris.estimator.predict(expected).tolist()
    proba = result.as_numpy("predict_proba")
    assert proba.shape == (20, 3)
    np.testing.assert_array_equal(proba, iris.estimator.predict_proba(expected))  # exact
    response = result.get_response()
    assert response["id"] == "r-1"
    assert response["model_name"] == "iris"
    for output in response["outputs"]:
        assert ("binary_data_size" in output.get("parameters", {})) is binary
        assert ("data" in output) is not binary


def test_no_outputs_named_means_all_of_them_in_binary(
    triton_iris: triton.InferenceServerClient, iris: LoadedModel
) -> None:
    # tritonclient then sets "binary_data_output": true for the whole request.
    result = triton_iris.infer("iris", [infer_input("input-0", ROWS, "FP64", binary=False)])
    names = [output["name"] for output in result.get_response()["outputs"]]
    assert names == ["predict", "predict_proba"]
    assert text(result.as_numpy("predict")) == iris.estimator.predict(ROWS).tolist()
    assert "id" not in result.get_response()  # none sent, none invented


def test_only_probabilities(triton_iris: triton.InferenceServerClient, iris: LoadedModel) -> None:
    outputs = [triton.InferRequestedOutput("predict_proba")]
    result = triton_iris.infer("iris", [infer_input("x", ROWS, "FP64", True)], outputs=outputs)
    assert [output["name"] for output in result.get_response()["outputs"]] == ["predict_proba"]
    assert result.as_numpy("predict") is None


@pytest.mark.parametrize(
    ("model", "rows", "outputs", "version", "status", "message"),
    [
        pytest.param("iris", ROWS[:, :3], None, "", "400", "expected 4 features", id="3-features"),
        pytest.param("iris", ROWS, ["proba"], "", "400", "unknown output 'proba'", id="output"),
        pytest.param("other", ROWS, None, "", "404", "'other' is not served here", id="model"),
        pytest.param("iris", ROWS, None, "1", "404", "has no version '1'", id="version"),
    ],
)
def test_tritonclient_sees_the_error(
    triton_iris: triton.InferenceServerClient,
    model: str,
    rows: np.ndarray,
    outputs: list[str] | None,
    version: str,
    status: str,
    message: str,
) -> None:
    requested = [triton.InferRequestedOutput(name) for name in outputs] if outputs else None
    with pytest.raises(InferenceServerException) as caught:
        triton_iris.infer(
            model,
            [infer_input("input-0", rows, "FP64", binary=True)],
            outputs=requested,
            model_version=version,
        )
    assert caught.value.status() == status
    assert message in caught.value.message()


@pytest.fixture(scope="module")
def triton_frame(frame_path: Path) -> Iterator[triton.InferenceServerClient]:
    """tritonclient talking to a real server of the DataFrame pipeline (a string column)."""
    with running_server(str(frame_path)) as url:
        client = triton.InferenceServerClient(url.removeprefix("http://"))
        yield client
        client.close()


def test_dataframe_model_metadata_lists_columns(triton_frame: triton.InferenceServerClient) -> None:
    metadata = triton_frame.get_model_metadata("frame")
    assert metadata["inputs"] == [
        {"name": "size", "datatype": "FP64", "shape": [-1]},
        {"name": "color", "datatype": "BYTES", "shape": [-1]},
        {"name": "weight", "datatype": "FP64", "shape": [-1]},
    ]
    assert metadata["parameters"] == {"content_type": "pd"}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_dataframe_columns_with_content_type_pd(
    triton_frame: triton.InferenceServerClient, frame_model: LoadedModel, binary: bool
) -> None:
    frame, _ = frame_data(12)
    inputs = [  # not in the fitted order: columns are matched by name
        infer_input("weight", frame["weight"].to_numpy(), "FP64", binary),
        infer_input("color", frame["color"].to_numpy(dtype=object), "BYTES", binary),
        infer_input("size", frame["size"].to_numpy(np.float32), "FP32", binary),
    ]
    result = triton_frame.infer("frame", inputs, parameters={"content_type": "pd"})
    sent = frame.astype({"size": np.float32}).astype({"size": np.float64})
    assert text(result.as_numpy("predict")) == frame_model.estimator.predict(sent).tolist()
    np.testing.assert_array_equal(
        result.as_numpy("predict_proba"), frame_model.estimator.predict_proba(sent)
    )
