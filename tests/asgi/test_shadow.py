"""Shadow agreement: labels equal, numbers within the tolerance."""

from __future__ import annotations

import numpy as np

from restpredict.asgi.shadow import agree


def test_labels_agree_only_when_equal() -> None:
    assert agree(np.array(["a", "b"]), np.array(["a", "b"]), 0.0)
    assert not agree(np.array(["a", "b"]), np.array(["a", "c"]), 0.0)
    assert not agree(np.array(["a", "b"]), np.array([0, 1]), 0.0)


def test_numbers_agree_within_the_tolerance() -> None:
    assert agree(np.array([1.0, 2.0]), np.array([1.0005, 2.0]), 1e-3)
    assert not agree(np.array([1.0, 2.0]), np.array([1.01, 2.0]), 1e-3)
    assert not agree(np.array([1.0]), np.array([1.0, 2.0]), 1.0)
