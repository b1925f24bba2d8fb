"""Score Spark DataFrames with a restpredict model: a pandas UDF, and whole Parquet tables.

``predict_udf(spark, SOURCE)`` resolves the model source on the driver (a local file, an
MLflow model folder, ``s3://``/``gs://``/``az://``/``https://`` or ``models:/``/``runs:/``, as
``serve`` takes), loads and checks it there, ships the model file's bytes and its code paths
(``--code-path``, an MLflow folder's ``code/``) to the executors once (broadcast variables), and
returns an iterator-of-batches pandas UDF (Arrow transfer): each Python worker unpickles the
model once, after checking the bytes against the driver's SHA-256 and its own scikit-learn
version (the pickle's, and the one an MLflow MLmodel recorded), as ``serve`` does. Executors
need no access to the model store nor its credentials. Rows are validated by the same rules as
``/predict`` and batch scoring (``restpredict.batch``), so the answers equal the local ones; a
bad row fails the task with its row number and reason.

    udf = predict_udf(spark, "model.joblib")
    df.withColumn("prediction", udf("sepal_length", "sepal_width", ...))   # by position
    df.withColumn("prediction", udf(F.struct(*feature_columns)))           # by name
    predict_udf(spark, "model.joblib", proba=True)  # struct<prediction, proba_<label>...>

pyspark is an optional dependency (``restpredict[spark]``) and needs a Java 17+ runtime.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import io
import os
import shutil
import tempfile
import time
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Tuple, Union  # noqa: UP035

import numpy as np
import pandas as pd
import pyarrow as pa

from restpredict.batch.job import Summary
from restpredict.batch.predict import predict_rows
from restpredict.batch.validate import Layout, check_batch, plan_layout
from restpredict.batch.writers import PREDICTION, label_type
from restpredict.errors import ConfigError, InputError
from restpredict.model.loading import LoadedModel, load_model
from restpredict.model.prepare import check_recorded_version, load_resolved
from restpredict.settings import Settings
from restpredict.sources import resolve

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType

# The argument type pyspark reads to pick an iterator-of-batches UDF taking several columns,
# each a Series or (for a struct) a DataFrame. typing's spelling: pyspark inspects __origin__.
Batch = Tuple[Union[pd.Series, pd.DataFrame], ...]  # noqa: UP006, UP007

__all__ = ["ModelUDF", "predict_udf", "score_parquet", "spark_session"]


@dataclass(frozen=True)
class _Shipped:
    """What an executor needs to load the model: the file's bytes and what to check them by."""

    data: Any  # a Broadcast[bytes]
    suffix: str
    sha256: str
    allow_version_mismatch: bool
    trusted_types: tuple[str, ...]
    code: Any = None  # a Broadcast[bytes] of a zip of the code paths, or None
    code_paths: tuple[str, ...] = ()  # where each code path lands in the unpacked zip
    source: str = ""  # the model source, redacted, for error messages
    recorded_sklearn: str | None = None  # the scikit-learn version an MLflow MLmodel recorded


# One loaded model per Python worker process and file digest: Spark reuses workers across
# tasks (spark.python.worker.reuse), so a model is unpickled once per worker, not per batch.
_LOADED: dict[str, LoadedModel] = {}


class ModelUDF:
    """A callable pandas UDF: ``udf(*columns)`` by position, ``udf(struct)`` by name."""

    def __init__(self, udf: Any, model: LoadedModel, proba: bool) -> None:
        self._udf = udf
        self.model = model
        self.proba = proba

    def __call__(self, *columns: str | Column) -> Column:
        """The prediction column (a struct with ``proba``) for these input columns."""
        return self._udf(*columns)


def predict_udf(
    spark: SparkSession,
    source: str | Path,
    *,
    proba: bool = False,
    sha256: str | None = None,
    allow_version_mismatch: bool = False,
    trusted_types: Sequence[str] = (),
    code_paths: Sequence[Path] = (),
    cache_dir: Path | None = None,
    offline: bool = False,
) -> ModelUDF:
    """A pandas UDF that scores rows with the model ``source`` names, on the executors."""
    settings = Settings.model_validate(
        {
            "model": str(source),
            "sha256": sha256,
            "allow_version_mismatch": allow_version_mismatch,
            "trusted_types": tuple(trusted_types),
            "code_paths": tuple(code_paths),
            "cache_dir": cache_dir,
            "offline": offline,
        }
    )
    # Resolved (fetched into the cache) once, then loaded with every check ``serve`` makes; the
    # executors get the same file and repeat the checks that depend on where they run.
    resolved = resolve(settings.model or "", cache_dir=cache_dir, offline=offline)
    model = load_resolved(resolved, settings, allow_version_mismatch=allow_version_mismatch)
    if proba and not model.schema.has_proba:
        raise InputError(f"{model.schema.estimator} has no predict_proba; leave out proba")
    trusted, code = tuple(trusted_types), tuple(code_paths)
    if resolved.mlflow is not None:
        trusted = (*trusted, *(t for t in resolved.mlflow.trusted_types if t not in trusted))
        if resolved.mlflow.code_dir is not None:
            code = (*code, resolved.mlflow.code_dir)
    bundle, layout = _code_bundle(code)
    context = spark.sparkContext
    shipped = _Shipped(
        data=context.broadcast(Path(model.source).read_bytes()),
        suffix=Path(model.source).suffix,
        sha256=model.sha256,
        allow_version_mismatch=allow_version_mismatch,
        trusted_types=trusted,
        code=context.broadcast(bundle) if bundle is not None else None,
        code_paths=layout,
        source=resolved.source,
        recorded_sklearn=resolved.mlflow.sklearn_version if resolved.mlflow else None,
    )
    return_type = _return_type(model, proba)
    with _pandas_3_tolerated():
        return _udf(shipped, model, return_type, proba)


def _udf(shipped: _Shipped, model: LoadedModel, return_type: DataType, proba: bool) -> ModelUDF:
    from pyspark.sql.pandas.functions import pandas_udf

    if proba:

        def frames(
            batches: Iterator[Batch],
        ) -> Iterator[pd.DataFrame]:
            yield from _score(shipped, batches, proba=True)

        return ModelUDF(pandas_udf(frames, return_type), model, proba)

    def series(batches: Iterator[Batch]) -> Iterator[pd.Series]:
        for scored in _score(shipped, batches, proba=False):
            yield scored[PREDICTION]

    return ModelUDF(pandas_udf(series, return_type), model, proba)


@contextlib.contextmanager
def _pandas_3_tolerated() -> Iterator[None]:
    """pyspark 4.x warns that pandas >= 3 is not fully supported; what we use is tested."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "PySpark does not yet fully support pandas", category=FutureWarning
        )
        yield


def _score(shipped: _Shipped, batches: Iterator[Any], *, proba: bool) -> Iterator[pd.DataFrame]:
    """Runs on the executors: each Arrow batch validated and predicted, in order."""
    model = _worker_model(shipped)
    first = 0
    for args in batches:
        columns = args if isinstance(args, tuple) else (args,)
        batch, layout = _as_batch(columns, model)
        checked = check_batch(batch, layout, model.schema)
        if checked.rejects:
            raise InputError(f"in this Spark partition, {checked.rejects[0]}")
        numbers = np.arange(first, first + batch.num_rows)
        scored = predict_rows(model, checked.rows, numbers, proba=proba)
        if scored.rejects:
            raise InputError(f"in this Spark partition, {scored.rejects[0]}")
        first += batch.num_rows
        yield _frame(model, scored.prediction.labels, scored.prediction.proba)


def _worker_model(shipped: _Shipped) -> LoadedModel:
    """The model, unpickled once per worker after the driver's checks are repeated here."""
    model = _LOADED.get(shipped.sha256)
    if model is not None:
        return model
    if not shipped.allow_version_mismatch:  # this worker's scikit-learn may not be the driver's
        check_recorded_version(shipped.source, shipped.recorded_sklearn)
    data: bytes = shipped.data.value
    code = _unpacked_code(shipped)
    with tempfile.TemporaryDirectory(prefix="restpredict-") as directory:
        path = Path(directory) / f"model{shipped.suffix}"
        path.write_bytes(data)
        model = load_model(
            path,
            sha256=shipped.sha256,
            allow_version_mismatch=shipped.allow_version_mismatch,
            trusted_types=shipped.trusted_types,
            code_paths=code,
        )
    _LOADED[shipped.sha256] = model
    return model


def _code_bundle(paths: Sequence[Path]) -> tuple[bytes | None, tuple[str, ...]]:
    """The code paths as one zip (each under its own numbered folder), and where each lands.

    A file or a package keeps its name (it is imported by it); a plain folder's modules sit
    directly in its numbered folder, which becomes the ``sys.path`` entry.
    """
    if not paths:
        return None, ()
    buffer = io.BytesIO()
    layout = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for i, path in enumerate(paths):
            keeps_name = path.is_file() or (path / "__init__.py").is_file()
            root = f"{i}/{path.name}" if keeps_name else str(i)
            layout.append(root)
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for file in files:
                inside = file.relative_to(path).as_posix() if path.is_dir() else ""
                bundle.write(file, f"{root}/{inside}".rstrip("/"))
    return buffer.getvalue(), tuple(layout)


def _unpacked_code(shipped: _Shipped) -> tuple[Path, ...]:
    """The shipped code paths, unpacked into a folder that lives as long as this worker."""
    if shipped.code is None:
        return ()
    folder = Path(tempfile.mkdtemp(prefix="restpredict-code-"))
    atexit.register(shutil.rmtree, folder, True)
    with zipfile.ZipFile(io.BytesIO(shipped.code.value)) as bundle:
        bundle.extractall(folder)
    return tuple(folder / root for root in shipped.code_paths)


def _as_batch(columns: tuple[Any, ...], model: LoadedModel) -> tuple[pa.RecordBatch, Layout]:
    """A struct argument is a DataFrame (columns by name); plain columns go by position."""
    if len(columns) == 1 and isinstance(columns[0], pd.DataFrame):
        frame = columns[0]
        batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
        return batch, plan_layout(batch.schema.names, model.schema)
    names = model.schema.feature_names or tuple(f"column_{i}" for i in range(len(columns)))
    if len(names) != len(columns):
        raise InputError(
            f"the model takes {len(names)} features, but the UDF was given {len(columns)} "
            "column(s)",
            code="wrong_feature_count",
        )
    arrays = [pa.Array.from_pandas(series) for series in columns]
    return pa.RecordBatch.from_arrays(arrays, names=list(names)), Layout(features=tuple(names))


def _frame(model: LoadedModel, labels: Any, proba: Any) -> pd.DataFrame:
    out: dict[str, Any] = {PREDICTION: labels}
    if proba is not None:
        for j, label in enumerate(_classes(model, proba.shape[1])):
            out[f"proba_{label}"] = proba[:, j]
    return pd.DataFrame(out)


def _classes(model: LoadedModel, width: int) -> tuple[Any, ...]:
    classes = model.schema.classes
    return tuple(classes) if classes is not None else tuple(range(width))


def _return_type(model: LoadedModel, proba: bool) -> DataType:
    """The Spark type of the labels (from a prediction on the example row), plus probabilities."""
    from pyspark.sql.pandas.types import from_arrow_type
    from pyspark.sql.types import DoubleType, StructField, StructType

    example = model.schema.example
    if example is None:
        raise InputError("the model does not say how many features it takes; cannot type a UDF")
    row = np.array([example], dtype=np.float64 if model.schema.numeric_only else object)
    prediction = model.predict(row, proba=proba)
    assert prediction.labels is not None
    labels = from_arrow_type(label_type(prediction.labels))
    if not proba:
        return labels
    width = prediction.proba.shape[1] if prediction.proba is not None else 0
    fields = [StructField(PREDICTION, labels)]
    fields += [StructField(f"proba_{c}", DoubleType()) for c in _classes(model, width)]
    return StructType(fields)


def spark_session(master: str = "local[*]") -> SparkSession:
    """A session for ``predict --engine spark``: no web UI; workers run this Python."""
    import sys

    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName("restpredict")
    builder = builder.config("spark.ui.enabled", "false")
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1")
    try:
        return builder.getOrCreate()
    except Exception as exc:  # Java missing, or the JVM did not start
        raise ConfigError(
            f"cannot start Spark ({_first_line(exc)}); Spark needs a Java 17+ runtime "
            "(on Debian: apt-get install default-jre-headless)"
        ) from None


def score_parquet(
    spark: SparkSession,
    source: str | Path,
    input_path: str,
    output: Path,
    *,
    keep: Sequence[str] = (),
    keep_all: bool = False,
    proba: bool = False,
    ignore_unknown: bool = False,
    sha256: str | None = None,
    allow_version_mismatch: bool = False,
    trusted_types: Sequence[str] = (),
    code_paths: Sequence[Path] = (),
    cache_dir: Path | None = None,
    offline: bool = False,
) -> Summary:
    """Parquet in, Parquet (a directory of part files) out, scored on ``spark``."""
    from pyspark.sql import functions as F

    started = time.perf_counter()
    udf = predict_udf(
        spark,
        source,
        proba=proba,
        sha256=sha256,
        allow_version_mismatch=allow_version_mismatch,
        trusted_types=trusted_types,
        code_paths=code_paths,
        cache_dir=cache_dir,
        offline=offline,
    )
    frame = _read(spark, input_path)
    layout = plan_layout(
        frame.columns, udf.model.schema, keep=keep, keep_all=keep_all, ignore_unknown=ignore_unknown
    )
    if udf.model.schema.feature_names is not None:
        scored = udf(F.struct(*[F.col(name) for name in layout.features]))
    else:
        scored = udf(*[F.col(name) for name in layout.features])
    kept = [F.col(name) for name in layout.keep]
    if proba:
        result = frame.select(*kept, scored.alias("_scored")).select(*layout.keep, "_scored.*")
    else:
        result = frame.select(*kept, scored.alias(PREDICTION))
    with _staged_directory(output) as partial:
        _run(lambda: result.write.parquet(str(partial)))
        rows = _run(lambda: spark.read.parquet(str(partial)).count())
    return Summary(rows, rows, 0, time.perf_counter() - started, backend="sklearn")


def _read(spark: SparkSession, path: str) -> DataFrame:
    return _run(lambda: spark.read.parquet(path))


def _run(action: Any) -> Any:
    """Run a Spark action; a failure inside a UDF becomes the InputError it started as."""
    try:
        return action()
    except Exception as exc:
        raise _spark_error(exc) from None


def _spark_error(exc: Exception) -> Exception:
    text = str(exc)
    marker = "restpredict.errors.InputError: "
    if marker in text:
        return InputError(text.split(marker, 1)[1].splitlines()[0])
    if type(exc).__name__ == "AnalysisException":
        return InputError(_first_line(exc))
    return RuntimeError(f"Spark failed: {_first_line(exc)}")


@contextlib.contextmanager
def _staged_directory(target: Path) -> Iterator[Path]:
    """Spark writes a directory; it is renamed into place only when the job succeeded."""
    if target.exists():
        raise InputError(f"{target}: already exists; Spark writes a new directory")
    digest = hashlib.sha256(str(target).encode()).hexdigest()[:8]
    partial = target.parent / f".{target.name}.{digest}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    os.replace(partial, target)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
