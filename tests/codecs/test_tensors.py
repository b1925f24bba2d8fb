"""V2 tensor codec: JSON and binary data both ways, checked against tritonclient's own codec."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tritonclient.utils import deserialize_bytes_tensor, np_to_triton_dtype, serialize_byte_tensor

from restpredict.codecs import tensors
from restpredict.errors import InputError, MalformedBodyError, PredictionError

NUMERIC = [name for name in tensors.DATATYPES if name not in ("BYTES",)]


@pytest.mark.parametrize("datatype", NUMERIC)
def test_binary_round_trip_matches_tritonclient(datatype: str) -> None:
    dtype = tensors.DATATYPES[datatype]
    array = (np.arange(6) % 2 == 1) if datatype == "BOOL" else np.arange(6).astype(dtype)
    array = array.reshape(2, 3)
    assert np_to_triton_dtype(array.dtype) == datatype  # the client names it the same way
    raw = tensors.to_binary(array, datatype)
    assert raw == array.tobytes()  # what tritonclient sends: InferInput.set_data_from_numpy
    decoded = tensors.from_binary("x", datatype, [2, 3], raw)
    assert decoded.dtype.kind == array.dtype.kind
    np.testing.assert_array_equal(decoded, array)


@given(
    hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64, np.int64, np.uint8]),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
    )
)
def test_any_numeric_array_survives_binary(array: np.ndarray) -> None:
    datatype = tensors.datatype_of(array)
    decoded = tensors.from_binary("x", datatype, list(array.shape), array.tobytes())
    np.testing.assert_array_equal(decoded, array)


@given(st.lists(st.text(), min_size=0, max_size=8))
def test_bytes_elements_are_length_prefixed_like_tritonclient(texts: list[str]) -> None:
    array = np.array(texts, dtype=object)
    raw = tensors.to_binary(array, "BYTES")
    if texts:
        assert raw == serialize_byte_tensor(array).item()
        assert [b.decode() for b in deserialize_bytes_tensor(raw)] == texts
    assert tensors.from_binary("s", "BYTES", [len(texts)], raw).tolist() == texts


def test_json_data_may_be_nested_or_flat() -> None:
    nested = tensors.from_json("x", "FP64", [2, 2], [[1, 2.5], [3, 4]])
    flat = tensors.from_json("x", "FP64", [2, 2], [1, 2.5, 3, 4])
    np.testing.assert_array_equal(nested, flat)
    assert nested.shape == (2, 2)
    assert tensors.from_json("x", "INT64", [1], 7).tolist() == [7]  # a bare scalar


def test_deep_nesting_is_flattened_without_recursion() -> None:
    data: Any = [1.0]
    for _ in range(5000):
        data = [data]
    assert tensors.from_json("x", "FP64", [1], data).tolist() == [1.0]


@pytest.mark.parametrize(
    ("datatype", "data", "expected"),
    [
        pytest.param("FP32", [0.1, 2], np.array([0.1, 2], dtype=np.float32), id="fp32"),
        pytest.param("FP16", [1.5, -2], np.array([1.5, -2], dtype=np.float16), id="fp16"),
        pytest.param("INT8", [-128, 127], np.array([-128, 127], dtype=np.int8), id="int8"),
        pytest.param("UINT64", [0, 2**64 - 1], np.array([0, 2**64 - 1], np.uint64), id="uint64"),
        pytest.param("BOOL", [True, False], np.array([True, False]), id="bool"),
        pytest.param("BYTES", ["a", "ü"], np.array(["a", "ü"], dtype=object), id="bytes"),
    ],
)
def test_json_elements_take_the_declared_type(
    datatype: str, data: list[Any], expected: np.ndarray
) -> None:
    array = tensors.from_json("x", datatype, [2], data)
    assert array.dtype == expected.dtype
    np.testing.assert_array_equal(array, expected)


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "message"),
    [
        pytest.param("FP64", [2, 2], [1, 2, 3], "holds 4 elements but data has 3", id="count"),
        pytest.param("FP64", [1], ["1.5"], "element 0 is '1.5'; expected numbers", id="str"),
        pytest.param("FP64", [1], [True], "expected numbers", id="bool-as-number"),
        pytest.param("INT64", [1], [None], "expected integers", id="null-integer"),
        pytest.param("INT32", [1], [1.5], "expected integers", id="float-as-int"),
        pytest.param("UINT8", [1], [256], "outside the UINT8 range", id="uint8-range"),
        pytest.param("INT64", [1], [2**63], "outside the INT64 range", id="int64-range"),
        pytest.param("FP16", [1], [1e6], "outside the FP16 range", id="fp16-overflow"),
        pytest.param("FP64", [1], [10**400], "outside the FP64 range", id="huge-int"),
        pytest.param("BOOL", [1], [1], "expected true/false", id="int-as-bool"),
        pytest.param("BYTES", [1], [1], "expected strings", id="number-as-bytes"),
        pytest.param("BF16", [1], [1.0], "datatype 'BF16' is not supported", id="bf16"),
        pytest.param("FLOAT", [1], [1.0], "datatype 'FLOAT' is not supported", id="unknown"),
        pytest.param("FP64", [-1, 2], [1, 2], "negative dimension", id="negative-shape"),
    ],
)
def test_bad_json_tensors_name_the_problem(
    datatype: str, shape: list[int], data: Any, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        tensors.from_json("feat", datatype, shape, data)
    assert caught.value.detail.startswith("input 'feat': ")
    assert message in caught.value.detail
    assert caught.value.code == "invalid_tensor"


@pytest.mark.parametrize(
    ("datatype", "shape", "raw", "message"),
    [
        pytest.param("FP32", [2], b"\0" * 7, "takes 8 bytes, binary_data_size is 7", id="short"),
        pytest.param("BYTES", [1], b"\x05\0\0\0ab", "needs 5 bytes", id="bytes-cut"),
        pytest.param("BYTES", [1], b"\x01\0", "cut off at byte 0", id="prefix-cut"),
        pytest.param("BYTES", [2], struct.pack("<I", 1) + b"a", "holds 2 elements", id="count"),
        pytest.param("BYTES", [1], struct.pack("<I", 1) + b"\xff", "not UTF-8", id="utf8"),
    ],
)
def test_bad_binary_tensors_name_the_problem(
    datatype: str, shape: list[int], raw: bytes, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        tensors.from_binary("feat", datatype, shape, raw)


def test_bool_bytes_other_than_zero_are_true() -> None:
    assert tensors.from_binary("b", "BOOL", [3], b"\x00\x01\x02").tolist() == [False, True, True]


def test_split_body_uses_the_header_length() -> None:
    assert tensors.split_body(b'{"a":1}XYZ', "7") == (b'{"a":1}', b"XYZ")
    assert tensors.split_body(b'{"a":1}', None) == (b'{"a":1}', b"")


@pytest.mark.parametrize("value", ["-1", "abc", "99", "", "٣"])
def test_split_body_refuses_a_bad_header_length(value: str) -> None:
    with pytest.raises(MalformedBodyError, match="Inference-Header-Content-Length"):
        tensors.split_body(b'{"a":1}XYZ', value)


def test_split_binary_needs_exact_sizes() -> None:
    assert tensors.split_binary(b"aabbb", [2, 3]) == [b"aa", b"bbb"]
    with pytest.raises(MalformedBodyError, match="add up to 4 bytes, but 5 bytes"):
        tensors.split_binary(b"aabbb", [2, 2])


@pytest.mark.parametrize(
    ("array", "datatype"),
    [
        pytest.param(np.array(["setosa"]), "BYTES", id="unicode"),
        pytest.param(np.array(["a"], dtype=object), "BYTES", id="object"),
        pytest.param(np.array([1], dtype=np.int32), "INT32", id="int32"),
        pytest.param(np.array([1.0]), "FP64", id="fp64"),
        pytest.param(np.array([True]), "BOOL", id="bool"),
        pytest.param(np.array([1.0], dtype=np.longdouble), "FP64", id="longdouble"),
    ],
)
def test_datatype_of_model_outputs(array: np.ndarray, datatype: str) -> None:
    assert tensors.datatype_of(array) == datatype


def test_datatype_of_refuses_complex_outputs() -> None:
    with pytest.raises(PredictionError):
        tensors.datatype_of(np.array([1j]))


def test_to_json_is_flat_row_major_text_for_bytes() -> None:
    assert tensors.to_json(np.array([[1, 2], [3, 4]])) == [1, 2, 3, 4]
    assert tensors.to_json(np.array([b"ab", "c"], dtype=object)) == ["ab", "c"]
