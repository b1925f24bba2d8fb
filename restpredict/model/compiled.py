"""The optional compiled backend: the estimator converted to ONNX, run by ONNX Runtime.

For tree ensembles most of a ``predict`` is the model itself (one Python-level dispatch per tree),
which batching cannot remove; ONNX Runtime evaluates the whole ensemble in C++. It is used only
when it answers like scikit-learn: on sample rows drawn from the model's own fitted statistics
(split thresholds, scaler means and scales), labels must be equal and probabilities (and
regression outputs) within ``onnx_tolerance``. Otherwise, or when ``skl2onnx``/``onnxruntime``
are not installed (``pip install 'restpredict[onnx]'``) or cannot convert the model, the model
stays on scikit-learn and one warning line says why.

Input is tried as float64, then float32. scikit-learn's trees compare float32 inputs with float64
thresholds, which ONNX cannot express (skl2onnx stores float32 thresholds, rounded to nearest):
for float32 input each threshold is replaced by the largest float32 not above it, which makes
``x <= t`` decide exactly as scikit-learn does. The sample rows are made to land right at
thresholds, so a graph that still disagrees there is refused.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import numpy as np
from sklearn.base import is_classifier

from restpredict.model.fast.probe import SAMPLE_ROWS, tree_structures
from restpredict.model.fast.probe import sample_rows as probe_rows
from restpredict.model.loading import LoadedModel
from restpredict.settings import Settings

__all__ = ["CompiledEstimator", "compile_model", "sample_rows", "verify"]

logger = logging.getLogger("restpredict.compiled")

Float = type[np.floating[Any]]
_DTYPES: tuple[Float, ...] = (np.float64, np.float32)


class CompiledEstimator:
    """``predict``/``predict_proba`` through ONNX Runtime; any other attribute from the original.

    It stands in for the estimator inside LoadedModel, so everything that reads the fitted
    estimator (``classes_``, ``feature_names_in_``) keeps working unchanged.
    """

    restpredict_backend = "onnx"

    def __init__(self, original: Any, onnx_bytes: bytes, dtype: Float) -> None:
        self.original = original
        self.onnx_bytes = onnx_bytes
        self.session = _session(onnx_bytes)
        self.dtype = dtype
        self._input = self.session.get_inputs()[0].name
        self._outputs = [output.name for output in self.session.get_outputs()]
        self._pid = os.getpid()

    def predict(self, X: Any) -> np.ndarray:
        """Labels (classifiers) or values (regressors), as scikit-learn's ``predict`` returns."""
        out = self._run(X, self._outputs[0])
        return out.ravel() if out.ndim == 2 and out.shape[1] == 1 else out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities as float64 (the float32 ones scaled up, not recomputed)."""
        return self._run(X, self._outputs[1]).astype(np.float64)

    def _run(self, X: Any, output: str) -> np.ndarray:
        rows = np.ascontiguousarray(np.asarray(X, dtype=self.dtype))
        if np.isnan(rows).any():
            # Missing values: converters treat NaN in their own ways (a tree's missing-value
            # branch is often lost), and verification covers finite rows only, so a batch
            # with any is predicted by the original estimator.
            method = "predict" if output == self._outputs[0] else "predict_proba"
            return np.asarray(getattr(self.original, method)(X))
        if self._pid != os.getpid():
            # A worker forked from the supervisor: an ONNX Runtime session is not fork-safe
            # (its allocator and thread state belong to the parent), so each worker opens its own.
            self.session, self._pid = _session(self.onnx_bytes), os.getpid()
        return np.asarray(self.session.run([output], {self._input: rows})[0])

    def __getattr__(self, name: str) -> Any:
        if name == "original":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.original, name)


def compile_model(model: LoadedModel, settings: Settings) -> LoadedModel:
    """The model on ONNX Runtime if asked for and verified; otherwise unchanged, with a warning."""
    if settings.backend != "onnx":
        return model
    reason = _unsupported(model)
    if reason is None:
        try:
            import onnxruntime  # noqa: F401
            import skl2onnx  # noqa: F401
        except ImportError:
            reason = "skl2onnx and onnxruntime are not installed (pip install 'restpredict[onnx]')"
    if reason is not None:
        logger.warning(
            "compiled backend not used for %s: %s; using scikit-learn", model.name, reason
        )
        return model
    rows = sample_rows(model)
    failures = []
    for dtype in _DTYPES:
        mode = np.dtype(dtype).name
        try:
            compiled = _convert(model.estimator, rows, dtype)
        except Exception as exc:  # skl2onnx raises many types for models it cannot convert
            failures.append(f"{mode}: cannot convert ({_first_line(exc)})")
            continue
        mismatch = verify(model.estimator, compiled, rows, settings.onnx_tolerance)
        if mismatch is None:
            logger.info(
                "compiled backend: %s runs on ONNX Runtime (%s input), verified on %d rows "
                "(labels equal, outputs within %g)",
                model.name,
                mode,
                len(rows),
                settings.onnx_tolerance,
            )
            return dataclasses.replace(model, estimator=compiled)
        failures.append(f"{mode}: {mismatch}")
    logger.warning(
        "compiled backend not used for %s: %s; using scikit-learn", model.name, "; ".join(failures)
    )
    return model


def verify(
    reference: Any, compiled: CompiledEstimator, rows: np.ndarray, tolerance: float
) -> str | None:
    """None if ``compiled`` answers like ``reference`` on ``rows``; else what differed."""
    expected, got = np.asarray(reference.predict(rows)), compiled.predict(rows)
    if is_classifier(reference):
        differ = (
            int(np.count_nonzero(expected != got)) if expected.shape == got.shape else len(rows)
        )
        if differ:
            return f"{differ} of {len(rows)} labels differ"
    else:
        error = _max_error(expected, got)
        if error > tolerance:
            return f"predictions differ by up to {error:.3g} (tolerance {tolerance:g})"
    if hasattr(reference, "predict_proba") and len(compiled._outputs) > 1:
        error = _max_error(np.asarray(reference.predict_proba(rows)), compiled.predict_proba(rows))
        if error > tolerance:
            return f"probabilities differ by up to {error:.3g} (tolerance {tolerance:g})"
    return None


def sample_rows(model: LoadedModel, n: int = SAMPLE_ROWS, seed: int = 0) -> np.ndarray:
    """The model's probe rows (``model.fast.probe``): around split thresholds and scaler means."""
    return probe_rows(model.estimator, model.schema.n_features or 0, n, seed)


def _unsupported(model: LoadedModel) -> str | None:
    if not model.schema.numeric_only:
        return "only models with numeric columns can be compiled"
    if not model.schema.n_features:
        return "the model does not record its number of features"
    return None


def _convert(estimator: Any, rows: np.ndarray, dtype: Float) -> CompiledEstimator:
    from skl2onnx import to_onnx

    options = {"zipmap": False} if is_classifier(estimator) else None
    onnx_model = to_onnx(
        estimator,
        rows[:1].astype(dtype),
        options=options,
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    if dtype == np.float32:
        _floor_thresholds(onnx_model, tree_structures(estimator))
    return CompiledEstimator(estimator, onnx_model.SerializeToString(), dtype)


def _session(onnx_bytes: bytes) -> Any:
    import onnxruntime as ort

    session_options = ort.SessionOptions()
    # One thread: a worker process is meant to use one core; --workers scales across cores.
    session_options.intra_op_num_threads = 1
    session_options.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, session_options, providers=["CPUExecutionProvider"])


def _floor_thresholds(onnx_model: Any, trees: list[Any]) -> None:
    """Make float32 ``x <= t`` splits decide like scikit-learn's float32-vs-float64 compare."""
    for node in onnx_model.graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        attrs = {attribute.name: attribute for attribute in node.attribute}
        if "nodes_values" not in attrs or not trees:
            continue
        tree_ids = np.asarray(attrs["nodes_treeids"].ints)
        node_ids = np.asarray(attrs["nodes_nodeids"].ints)
        splits = np.asarray(attrs["nodes_modes"].strings) == b"BRANCH_LEQ"
        if tree_ids.max(initial=0) >= len(trees):
            continue  # not one ONNX tree per fitted tree (boosting): leave it to verification
        values = np.asarray(attrs["nodes_values"].floats, dtype=np.float32)
        exact = np.array(
            [
                trees[t].threshold[n] if split else 0.0
                for t, n, split in zip(tree_ids, node_ids, splits)
            ]
        )
        floored = exact.astype(np.float32)
        floored = np.where(floored > exact, np.nextafter(floored, np.float32(-np.inf)), floored)
        values[splits] = floored[splits]
        del attrs["nodes_values"].floats[:]
        attrs["nodes_values"].floats.extend(values.tolist())


def _max_error(expected: np.ndarray, got: np.ndarray) -> float:
    if expected.shape != got.shape:
        return float("inf")
    return float(np.max(np.abs(expected.astype(np.float64) - got.astype(np.float64)), initial=0))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
