"""Exact fast paths: scikit-learn's own arithmetic on a fitted estimator, minus the overhead.

One module per family (``trees``, ``linear``, ``boosting``, ``preprocessing`` and ``pipeline``,
on ``base``); ``select`` picks the one that fits and judges its answers against scikit-learn's;
``probe`` makes the rows that judging (and the ONNX backend's) runs on. This package needs only
NumPy and scikit-learn (SciPy's ``expit``, which scikit-learn itself uses).
"""
