"""Load, verify and call a scikit-learn model. No HTTP here.

Loading a pickle runs code from the file. What this module does about it: an
optional SHA-256 pin is checked against the exact bytes that are then unpickled
(no window for the file to change between the check and the load), and ``.skops``
files are loaded with only the types skops trusts plus those the operator names.
"""

from __future__ import annotations

import hashlib
import io
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.base import BaseEstimator
from sklearn.exceptions import InconsistentVersionWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

from restpredict.errors import (
    InputError,
    IntegrityError,
    ModelLoadError,
    PredictionError,
    UnsupportedModelError,
    VersionMismatchError,
)
from restpredict.model import boosting
from restpredict.model.code_paths import activate
from restpredict.model.missing import missing_support
from restpredict.model.schema import Missing, ModelSchema, infer_schema

__all__ = [
    "NATIVE_SUFFIXES",
    "PICKLE_SUFFIXES",
    "SKOPS_SUFFIXES",
    "LoadedModel",
    "Prediction",
    "from_estimator",
    "load_model",
]

PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
SKOPS_SUFFIXES = (".skops",)
NATIVE_SUFFIXES = tuple(boosting.NATIVE_SUFFIXES)  # XGBoost, LightGBM, CatBoost model files


@dataclass(frozen=True)
class Prediction:
    """Labels and/or probabilities for a batch of rows, as NumPy arrays."""

    labels: np.ndarray | None = None
    proba: np.ndarray | None = None


@dataclass(frozen=True)
class LoadedModel:
    """A verified, fitted estimator with its schema and provenance."""

    estimator: Any
    schema: ModelSchema
    name: str
    sha256: str
    source: str
    sklearn_trained: str | None
    load_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    #: Where the file came from, for ``/metadata``: ``source`` (redacted), ``source_revision``
    #: (ETag, resolved MLflow version), ``mlflow`` (what its MLmodel says).
    origin: dict[str, Any] = field(default_factory=dict)
    #: The version it is served as, when several versions of its name are (``models:``).
    version: str | None = None

    @property
    def sklearn_running(self) -> str:
        """The scikit-learn version in this process."""
        return str(sklearn.__version__)

    def predict(self, rows: Any, *, labels: bool = True, proba: bool = False) -> Prediction:
        """Run the estimator; outputs JSON cannot carry (NaN, inf) raise PredictionError."""
        if proba and not self.schema.has_proba:
            raise InputError(
                f"{self.schema.estimator} has no predict_proba; ask for labels only",
                code="proba_unavailable",
            )
        rows = self._as_input(rows)
        try:
            out_labels = _labels(self.estimator.predict(rows)) if labels else None
            out_proba = np.asarray(self.estimator.predict_proba(rows)) if proba else None
        except (ValueError, TypeError, KeyError) as exc:
            # Shapes and types were validated already, so this is about values the
            # model will not take (say, an unknown category): the client's to fix.
            raise _rejected(exc) from exc
        except Exception as exc:
            error = PredictionError(f"the model raised {type(exc).__name__}")
            error.log_detail = _first_line(exc)
            raise error from exc
        for name, out in (("predictions", out_labels), ("probabilities", out_proba)):
            if out is not None and out.dtype.kind in "fc" and not np.isfinite(out).all():
                message = f"the model returned non-finite {name} (NaN or infinity)"
                if self.extra.get("warmed_up"):
                    # Finite on its example row, so these input values are the cause
                    # (e.g. magnitudes near 1e308 overflow inside the model): 422.
                    raise InputError(
                        f"{message} for these input values; they are outside what the model "
                        "can compute",
                        code="non_finite_output",
                    )
                raise PredictionError(
                    f"{message}, which JSON cannot carry", code="non_finite_output"
                )
        return Prediction(labels=out_labels, proba=out_proba)

    def warm_up(self) -> None:
        """One prediction on the schema's example row, so the first real request is not slow."""
        if self.schema.example is not None:
            row = np.array([self.schema.example], dtype=object)
            self.predict(row if not self.schema.numeric_only else row.astype(np.float64))
            self.extra["warmed_up"] = True  # later non-finite outputs are the input's doing

    def missing_support(self) -> tuple[Missing, ...] | None:
        """Which features take a null, from the tags, confirmed on the example row."""
        s = self.schema

        def probe(rows: np.ndarray) -> Any:
            matrix = rows.astype(np.float64) if s.numeric_only else rows
            return self.estimator.predict(self._as_input(matrix))

        return missing_support(
            self.estimator, s.n_features, s.feature_names, s.feature_kinds, s.example, probe
        )

    def _as_input(self, rows: np.ndarray) -> Any:
        """A DataFrame with the fitted column names when the model was fitted on one."""
        names = self.schema.feature_names
        takes_arrays = getattr(self.estimator, "takes_arrays", False)
        if names is None or not self.schema.wants_frame or takes_arrays:
            return rows
        import pandas as pd

        frame = pd.DataFrame(rows, columns=list(names))
        if rows.dtype == object:
            kinds = self.schema.feature_kinds or ()
            numeric = [n for n, k in zip(names, kinds) if k == "number"]
            frame[numeric] = frame[numeric].astype(np.float64)
        return frame

    def metadata(self) -> dict[str, Any]:
        """What ``/metadata`` and ``restpredict info`` show."""
        s = self.schema
        return {
            "name": self.name,
            "source": self.origin.get("source", self.source),
            "source_revision": self.origin.get("source_revision"),
            "model_file": self.source,
            "sha256": self.sha256,
            "estimator": s.estimator,
            "task": s.task,
            "n_features": s.n_features,
            "feature_names": list(s.feature_names) if s.feature_names else None,
            "feature_kinds": list(s.feature_kinds) if s.feature_kinds else None,
            "feature_nullable": (
                [s.nullable(j) for j in range(len(s.missing))] if s.missing is not None else None
            ),
            "classes": list(s.classes) if s.classes is not None else None,
            "has_proba": s.has_proba,
            "sklearn_version_trained": self.sklearn_trained,
            "sklearn_version_running": self.sklearn_running,
            "backend": str(getattr(self.estimator, "restpredict_backend", "sklearn")),
            "fast_path": getattr(self.estimator, "fast_path", None),
            **({"mlflow": self.origin["mlflow"]} if "mlflow" in self.origin else {}),
            **({"version": self.version} if self.version is not None else {}),
        }


def load_model(
    path: Path,
    *,
    sha256: str | None = None,
    allow_version_mismatch: bool = False,
    trusted_types: tuple[str, ...] = (),
    name: str | None = None,
    code_paths: tuple[Path, ...] = (),
) -> LoadedModel:
    """Read, verify, unpickle and inspect a model file; raise ModelLoadError if unfit to serve.

    ``code_paths`` are made importable first: the user's modules the pickle refers to.
    """
    started = time.perf_counter()
    suffix = path.suffix.lower()
    if suffix not in PICKLE_SUFFIXES + SKOPS_SUFFIXES + NATIVE_SUFFIXES:
        known = ", ".join(PICKLE_SUFFIXES + SKOPS_SUFFIXES + NATIVE_SUFFIXES)
        raise UnsupportedModelError(f"{path}: unknown model format {suffix!r} (expected {known})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read model file ({exc.strerror or exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256:
        raise IntegrityError(
            f"{path}: SHA-256 is {digest}, expected {sha256}; refusing to unpickle it"
        )
    activate(code_paths)
    if suffix in NATIVE_SUFFIXES:
        estimator, trained = boosting.load(path, data), None
    elif suffix in SKOPS_SUFFIXES:
        estimator, trained = _load_skops(path, data, trusted_types)
    else:
        estimator, trained = _load_pickle(path, data)
    return from_estimator(
        estimator,
        name=name or path.stem,
        sha256=digest,
        source=str(path),
        sklearn_trained=trained,
        allow_version_mismatch=allow_version_mismatch,
        started=started,
    )


def from_estimator(
    estimator: Any,
    *,
    name: str,
    sha256: str,
    source: str,
    sklearn_trained: str | None,
    allow_version_mismatch: bool = False,
    started: float | None = None,
) -> LoadedModel:
    """Check an in-memory estimator is servable and wrap it with its schema."""
    if (
        sklearn_trained is not None
        and sklearn_trained != sklearn.__version__
        and not allow_version_mismatch
    ):
        raise VersionMismatchError(
            f"{source}: pickled with scikit-learn {sklearn_trained} but {sklearn.__version__} "
            f"is installed; install scikit-learn=={sklearn_trained} (or re-export the model), "
            "or pass --allow-version-mismatch to serve it anyway"
        )
    if not callable(getattr(estimator, "predict", None)):
        raise UnsupportedModelError(
            f"{source}: found a {type(estimator).__module__}.{type(estimator).__qualname__}, "
            "which has no predict method; save the fitted estimator or Pipeline itself"
        )
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise UnsupportedModelError(
            f"{source}: the {type(estimator).__name__} is not fitted; call fit() before saving it"
        ) from None
    except TypeError:
        pass  # not a scikit-learn estimator; predict() will tell
    loaded = LoadedModel(
        estimator=estimator,
        schema=infer_schema(estimator),
        name=name,
        sha256=sha256,
        source=source,
        sklearn_trained=sklearn_trained,
    )
    schema = replace(loaded.schema, missing=loaded.missing_support())
    seconds = time.perf_counter() - started if started is not None else 0.0
    return replace(loaded, schema=schema, load_seconds=seconds)


def _load_pickle(path: Path, data: bytes) -> tuple[Any, str | None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimator = joblib.load(io.BytesIO(data))
        except (ModuleNotFoundError, AttributeError) as exc:
            raise ModelLoadError(_missing_code(path, exc), code="missing_code") from None
        except Exception as exc:
            raise ModelLoadError(
                f"{path}: not a loadable joblib/pickle file ({type(exc).__name__}: "
                f"{_first_line(exc)})"
            ) from None
    return estimator, _trained_version(estimator, caught)


def _load_skops(path: Path, data: bytes, trusted: tuple[str, ...]) -> tuple[Any, str | None]:
    try:
        import skops.io as sio
    except ImportError:
        raise ModelLoadError(
            f"{path}: .skops files need the skops package: pip install 'restpredict[skops]'"
        ) from None
    try:
        untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in trusted]
    except Exception as exc:
        raise ModelLoadError(f"{path}: not a readable skops file ({_first_line(exc)})") from None
    if untrusted:
        raise ModelLoadError(
            f"{path}: contains types that are not trusted: {', '.join(untrusted)}; "
            "if you trust them, list them in trusted_types (--trusted-type)",
            code="untrusted_types",
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimator = sio.loads(data, trusted=list(trusted) or None)
        except Exception as exc:
            raise ModelLoadError(f"{path}: cannot load skops file ({_first_line(exc)})") from None
    return estimator, _trained_version(estimator, caught)


def _labels(out: Any) -> np.ndarray:
    """One label per row: CatBoost's classifiers answer a column, shape (n, 1)."""
    array = np.asarray(out)
    return array.ravel() if array.ndim == 2 and array.shape[1] == 1 else array


def _missing_code(path: Path, exc: ModuleNotFoundError | AttributeError) -> str:
    """Which module or class the pickle needs, and the two ways to provide it."""
    library = (getattr(exc, "name", None) or "").partition(".")[0]
    if isinstance(exc, ModuleNotFoundError) and library in boosting.NATIVE_SUFFIXES.values():
        return (
            f"{path}: the model is a {library} model, and {library} is not installed here: "
            f"pip install 'restpredict[{library}]'"
        )
    if isinstance(exc, ModuleNotFoundError):
        what = f"module {exc.name!r}"
    else:  # pickle: "Can't get attribute 'Cls' on <module 'features' from '...'>"
        what = _first_line(exc).replace("Can't get attribute", "class", 1)
    return (
        f"{path}: the pickle needs {what}, which cannot be imported here; if it is your own "
        "code, pass --code-path PATH (its .py file or package directory; code_paths: in "
        "restpredict.yaml), else install the package that provides it"
    )


def _trained_version(estimator: Any, caught: list[warnings.WarningMessage]) -> str | None:
    """scikit-learn warns when unpickling state saved by another version; else it is ours."""
    for w in caught:
        if isinstance(w.message, InconsistentVersionWarning):
            return str(w.message.original_sklearn_version)
    return sklearn.__version__ if isinstance(estimator, BaseEstimator) else None


def _rejected(exc: BaseException) -> InputError:
    """The 422 for a value the model refused; its message only if scikit-learn wrote it.

    scikit-learn's input validation says what was wrong with the input ("Found unknown
    categories ['z'] in column 1"). Any other code's message may hold a path, a query or a
    secret: the client gets a generic detail and the server log gets the message.
    """
    message = _first_line(exc)
    if _raised_in_sklearn(exc):
        return InputError(f"the model rejected the input: {message}", code="model_rejected_input")
    error = InputError(
        "the model rejected the input; its message is in the server log under this request's id",
        code="model_rejected_input",
    )
    error.log_detail = f"{type(exc).__name__}: {message}"
    return error


def _raised_in_sklearn(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is scikit-learn's own code.

    The fast paths count as scikit-learn here: they raise scikit-learn's validation errors,
    word for word, from fixed strings.
    """
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = str(tb.tb_frame.f_globals.get("__name__", ""))
    return module == "sklearn" or module.startswith(("sklearn.", "restpredict.model.fast."))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
