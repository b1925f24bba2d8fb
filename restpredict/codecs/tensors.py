"""Open Inference Protocol (V2) tensors as NumPy arrays, from JSON or binary data. No HTTP.

A tensor is a name, a shape, a datatype and row-major data: JSON (nested or flat), or
with the binary tensor data extension, which ``tritonclient.http`` uses by default, raw
little-endian bytes after the JSON header (BYTES elements as a 4-byte little-endian length
followed by the bytes). Decoding checks every element against the declared datatype and
the element count against the shape, so anything that does not fit is an InputError that
names the tensor, never a NumPy exception or a silent cast.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from restpredict.errors import InputError, MalformedBodyError, PredictionError

__all__ = [
    "DATATYPES",
    "datatype_of",
    "from_binary",
    "from_json",
    "split_binary",
    "split_body",
    "to_binary",
    "to_json",
]

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
_LENGTH = struct.Struct("<I")


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary data after it, per ``Inference-Header-Content-Length``."""
    if header_length is None:
        return body, b""
    value = header_length.strip()
    if not (value.isascii() and value.isdigit()) or int(value) > len(body):
        raise MalformedBodyError(
            f"Inference-Header-Content-Length is {header_length!r}; expected the size of the "
            f"JSON header in bytes, at most the body's {len(body)}",
            code="invalid_header_length",
        )
    return body[: int(value)], body[int(value) :]


def split_binary(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    """Cut the bytes after the header into the inputs' ``binary_data_size`` pieces, in order."""
    if sum(sizes) != len(data):
        raise MalformedBodyError(
            f"the inputs' binary_data_size add up to {sum(sizes)} bytes, but {len(data)} "
            "bytes follow the JSON header",
            code="binary_size_mismatch",
        )
    pieces, offset = [], 0
    for size in sizes:
        pieces.append(data[offset : offset + size])
        offset += size
    return pieces


def from_json(name: str, datatype: str, shape: Sequence[int], data: Any) -> np.ndarray:
    """A tensor from JSON data (nested or flat, row-major), checked element by element."""
    dtype = _dtype(name, datatype)
    count = _count(name, shape)
    flat = _flatten(name, data)
    if len(flat) != count:
        raise _error(name, f"shape {list(shape)} holds {count} elements but data has {len(flat)}")
    if datatype == "BYTES":
        _check_types(name, flat, (str, type(None)), "strings (or null for a missing value)")
        array = np.empty(count, dtype=object)
        array[:] = flat
    elif datatype == "BOOL":
        _check_types(name, flat, (bool,), "true/false")
        array = np.array(flat, dtype=dtype)
    elif dtype.kind in "iu":
        _check_types(name, flat, (int,), "integers")
        info = np.iinfo(dtype)
        if flat and (min(flat) < info.min or max(flat) > info.max):
            raise _error(name, f"a value is outside the {datatype} range [{info.min}, {info.max}]")
        array = np.array(flat, dtype=dtype)
    else:
        _check_types(name, flat, (int, float, type(None)), "numbers (or null for a missing value)")
        array = _floats(name, datatype, flat)
    return array.reshape(tuple(shape))


def from_binary(name: str, datatype: str, shape: Sequence[int], raw: bytes) -> np.ndarray:
    """A tensor from binary tensor data; BYTES elements are decoded as UTF-8 text."""
    dtype = _dtype(name, datatype)
    count = _count(name, shape)
    if datatype == "BYTES":
        items = _unpack_bytes(name, raw)
        if len(items) != count:
            raise _error(name, f"shape {list(shape)} holds {count} elements, got {len(items)}")
        array = np.empty(count, dtype=object)
        array[:] = items
    else:
        if len(raw) != count * dtype.itemsize:
            raise _error(
                name,
                f"{datatype} of shape {list(shape)} takes {count * dtype.itemsize} bytes, "
                f"binary_data_size is {len(raw)}",
            )
        if datatype == "BOOL":
            array = np.frombuffer(raw, dtype=np.uint8) != 0
        else:
            array = np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
    return array.reshape(tuple(shape))


def datatype_of(array: np.ndarray) -> str:
    """The V2 datatype that carries ``array`` (text and objects are BYTES)."""
    kind = array.dtype.kind
    if kind in "OUS":
        return "BYTES"
    if kind == "b":
        return "BOOL"
    if kind in "iuf":
        for name, dtype in DATATYPES.items():
            if dtype.kind == kind and dtype.itemsize == array.dtype.itemsize:
                return name
        if kind == "f":
            return "FP64"  # long double: sent as FP64, the widest the protocol has
    raise PredictionError(f"the model returned {array.dtype} values, which V2 cannot carry")


def to_json(array: np.ndarray) -> list[Any]:
    """Flat, row-major JSON data; BYTES elements as text."""
    if datatype_of(array) == "BYTES":
        return [_text(value) for value in array.ravel().tolist()]
    return list(array.ravel().tolist())


def to_binary(array: np.ndarray, datatype: str) -> bytes:
    """Binary tensor data: little-endian, row-major; BYTES as length-prefixed elements."""
    if datatype == "BYTES":
        encoded = [_text(value).encode("utf-8") for value in array.ravel().tolist()]
        return b"".join(_LENGTH.pack(len(item)) + item for item in encoded)
    return np.ascontiguousarray(array, dtype=DATATYPES[datatype]).tobytes()


def _dtype(name: str, datatype: str) -> np.dtype[Any]:
    dtype = DATATYPES.get(datatype)
    if dtype is None:
        known = ", ".join(DATATYPES)
        raise _error(name, f"datatype {datatype!r} is not supported; use one of {known}")
    return dtype


def _count(name: str, shape: Sequence[int]) -> int:
    if any(dim < 0 for dim in shape):
        raise _error(name, f"shape {list(shape)} has a negative dimension")
    return math.prod(shape)


def _flatten(name: str, data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(item, list) for item in data):
        return data
    flat: list[Any] = []
    pending = [iter(data)]
    while pending:  # iterative: nesting depth is the client's choice
        for item in pending[-1]:
            if isinstance(item, list):
                pending.append(iter(item))
                break
            flat.append(item)
        else:
            pending.pop()
    return flat


def _check_types(name: str, flat: list[Any], kinds: tuple[type, ...], expected: str) -> None:
    for index, value in enumerate(flat):
        if type(value) not in kinds:  # exact types: a JSON true is not the number 1
            raise _error(name, f"element {index} is {value!r}; expected {expected}")


def _floats(name: str, datatype: str, flat: list[Any]) -> np.ndarray:
    """Floats of the datatype; a null is NaN (a missing value, which the model judges)."""
    try:
        wide = np.array(flat, dtype=np.float64)
    except OverflowError:
        raise _error(name, f"a value is outside the {datatype} range") from None
    with np.errstate(over="ignore"):
        array = wide.astype(DATATYPES[datatype])
    if np.isinf(array).any():  # JSON has no NaN/inf tokens, so these overflowed
        raise _error(name, f"a value is outside the {datatype} range")
    return array


def _unpack_bytes(name: str, raw: bytes) -> list[str]:
    items: list[str] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise _error(name, f"BYTES data is cut off at byte {offset} (in a length prefix)")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise _error(name, f"BYTES element {len(items)} needs {length} bytes; data ends first")
        try:
            items.append(raw[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise _error(name, f"BYTES element {len(items)} is not UTF-8 text") from None
        offset += length
    return items


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _error(name: str, message: str) -> InputError:
    return InputError(f"input {name!r}: {message}", code="invalid_tensor")
