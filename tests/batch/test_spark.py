"""restpredict.spark on a real Spark in local mode: answers equal the local model's.

Needs pyspark (the ``spark`` extra) and a Java 17+ runtime; without Java these tests are
skipped with the reason shown (``.ci/run`` installs ``default-jre-headless``). One Spark session
serves the whole module: starting one takes ~10 s.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from restpredict.errors import InputError, IntegrityError
from restpredict.model.loading import LoadedModel
from tests.support.models import frame_data

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (extra: spark)")

if shutil.which("java") is None:
    pytest.skip(
        "SKIPPED LOUDLY: no Java runtime on PATH; Spark tests need one "
        "(apt-get install -y default-jre-headless)",
        allow_module_level=True,
    )

from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from restpredict.sources import resolve  # noqa: E402
from restpredict.spark import _Shipped, _udf, predict_udf, score_parquet  # noqa: E402
from tests.sources.servers import Served, http_server  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("restpredict-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    yield session
    session.stop()


def iris_frame(spark: SparkSession, n: int) -> tuple[DataFrame, np.ndarray]:
    values = np.random.default_rng(5).uniform(0, 7, size=(n, 4))
    local = pd.DataFrame(values, columns=["a", "b", "c", "d"]).assign(id=np.arange(n))
    return spark.createDataFrame(local).repartition(2), values


def test_numeric_model_by_position_equals_local(
    spark: SparkSession, iris_path: Path, iris: LoadedModel
) -> None:
    df, values = iris_frame(spark, 5000)
    udf = predict_udf(spark, iris_path, proba=True)
    rows = df.withColumn("s", udf("a", "b", "c", "d")).select("id", "s.*").collect()
    scored = pd.DataFrame([row.asDict() for row in rows]).sort_values("id")
    expected = values[scored["id"].to_numpy()]
    assert scored["prediction"].tolist() == iris.estimator.predict(expected).tolist()
    proba = scored[[f"proba_{c}" for c in iris.schema.classes or ()]].to_numpy()
    np.testing.assert_allclose(proba, iris.estimator.predict_proba(expected), rtol=1e-12)
    schema = df.withColumn("s", udf("a", "b", "c", "d")).schema["s"].dataType
    assert [f.dataType.typeName() for f in schema.fields] == ["string"] + ["double"] * 3


def test_dataframe_pipeline_by_name_in_a_struct(
    spark: SparkSession, frame_model: LoadedModel, frame_path: Path
) -> None:
    frame, _ = frame_data(300)
    df = spark.createDataFrame(frame[["weight", "color", "size"]])
    udf = predict_udf(spark, frame_path)
    rows = df.withColumn("prediction", udf(F.struct("color", "size", "weight"))).collect()
    assert [r.prediction for r in rows] == frame_model.estimator.predict(frame).tolist()


def test_parquet_to_parquet_with_kept_columns(
    spark: SparkSession, tmp_path: Path, iris_int_path: Path
) -> None:
    from restpredict.model.loading import load_model

    values = np.random.default_rng(8).uniform(0, 7, size=(5000, 4))
    table = pa.table({"id": np.arange(5000), **{k: values[:, j] for j, k in enumerate("abcd")}})
    (tmp_path / "in").mkdir()
    pq.write_table(table.slice(0, 2000), tmp_path / "in" / "part-0.parquet")
    pq.write_table(table.slice(2000), tmp_path / "in" / "part-1.parquet")
    out = tmp_path / "scored"
    summary = score_parquet(spark, iris_int_path, str(tmp_path / "in"), out, keep=["id"])
    assert summary.rows_scored == 5000
    scored = pq.read_table(out).sort_by("id")
    assert scored.schema.field("prediction").type == pa.int64()
    model = load_model(iris_int_path)
    assert scored["prediction"].to_pylist() == model.estimator.predict(values).tolist()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_a_bad_row_fails_the_job_with_its_reason_and_leaves_no_output(
    spark: SparkSession, tmp_path: Path, iris_path: Path
) -> None:
    values = np.ones((100, 4))
    values[42, 1] = np.inf
    pq.write_table(
        pa.table({k: values[:, j] for j, k in enumerate("abcd")}), tmp_path / "in.parquet"
    )
    with pytest.raises(
        InputError, match="row 42: feature 'column_1': expected a finite number, got inf"
    ):
        score_parquet(spark, iris_path, str(tmp_path / "in.parquet"), tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_executors_check_the_sha256_pin(
    spark: SparkSession, iris_path: Path, iris: LoadedModel
) -> None:
    """Bytes that differ from what the driver verified are refused on the executor too.

    The digest is one no model has: Spark reuses Python workers across tests, and a worker
    that loaded iris keeps it by its digest, so iris's would find it loaded and check nothing.
    The bytes are iris's own, which load and predict if the check is skipped.
    """
    verified = hashlib.sha256(b"what the driver verified, not iris").hexdigest()
    tampered = _Shipped(
        data=spark.sparkContext.broadcast(iris_path.read_bytes()),
        suffix=".joblib",
        sha256=verified,
        allow_version_mismatch=False,
        trusted_types=(),
    )
    from pyspark.sql.types import StringType

    udf = _udf(tampered, iris, StringType(), proba=False)
    df, _ = iris_frame(spark, 10)
    with pytest.raises(Exception, match=f"expected {verified}; refusing to unpickle it"):
        df.select(udf("a", "b", "c", "d")).collect()
    with pytest.raises(IntegrityError):
        predict_udf(spark, iris_path, sha256="0" * 64)


def test_executors_check_the_scikit_learn_version_an_mlflow_model_recorded(
    spark: SparkSession, iris_path: Path, iris: LoadedModel
) -> None:
    """An executor whose scikit-learn is not the one the MLmodel names refuses the model."""
    shipped = _Shipped(
        data=spark.sparkContext.broadcast(iris_path.read_bytes()),
        suffix=".joblib",
        sha256=iris.sha256,
        allow_version_mismatch=False,
        trusted_types=(),
        source="models:/iris/1",
        recorded_sklearn="0.24.2",
    )
    from pyspark.sql.types import StringType

    df, _ = iris_frame(spark, 10)
    udf = _udf(shipped, iris, StringType(), proba=False)
    with pytest.raises(Exception, match=r"models:/iris/1: saved with scikit-learn 0\.24\.2"):
        df.select(udf("a", "b", "c", "d")).collect()
    allowed = _udf(replace(shipped, allow_version_mismatch=True), iris, StringType(), proba=False)
    assert len(df.select(allowed("a", "b", "c", "d")).collect()) == 10


def test_the_model_source_is_resolved_once(
    spark: SparkSession, iris_path: Path, tmp_path: Path
) -> None:
    """predict_udf asks the model's server what a single resolution asks, no more."""
    served = Served(files={"/iris.joblib": iris_path.read_bytes()})
    with http_server(served) as base:
        resolve(f"{base}/iris.joblib", cache_dir=tmp_path / "alone")
        once = served.requests
        predict_udf(spark, f"{base}/iris.joblib", cache_dir=tmp_path / "udf")
    assert served.requests == 2 * once


def test_a_model_in_s3_is_fetched_once_on_the_driver(
    spark: SparkSession, aws: str, bucket: str, tmp_path: Path, iris: LoadedModel
) -> None:
    df, values = iris_frame(spark, 2000)
    udf = predict_udf(spark, f"s3://{bucket}/iris.joblib", cache_dir=tmp_path / "cache")
    rows = df.select("id", udf("a", "b", "c", "d").alias("p")).collect()
    scored = sorted((row["id"], row["p"]) for row in rows)
    expected = iris.estimator.predict(values[[i for i, _ in scored]]).tolist()
    assert [p for _, p in scored] == expected
    assert udf.model.sha256 == iris.sha256


def test_an_mlflow_folder_with_its_code_is_shipped_to_the_executors(
    spark: SparkSession, tmp_path: Path
) -> None:
    """The pickle names ``spark_features.Ratios``, importable only from the folder's code/:
    Spark's Python workers can load it only if the code travelled with the model."""
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from tests.model.test_code_paths import FEATURES

    code = tmp_path / "code"
    code.mkdir()
    (code / "spark_features.py").write_text(FEATURES)
    sys.path.insert(0, str(code))
    try:
        import spark_features  # type: ignore[import-not-found]

        data = load_iris()
        model = make_pipeline(spark_features.Ratios(), LogisticRegression(max_iter=1000))
        model.fit(data.data, data.target_names[data.target])
        folder = tmp_path / "mlflow-model"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLflow's notes about pickles and signatures
            mlflow.sklearn.save_model(
                model,
                str(folder),
                serialization_format="cloudpickle",
                code_paths=[str(code / "spark_features.py")],
                pip_requirements=["scikit-learn"],
            )
        values = np.random.default_rng(8).uniform(0, 7, size=(1500, 4))
        expected = model.predict(values).tolist()
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("spark_features", None)
    try:
        udf = predict_udf(spark, folder, cache_dir=tmp_path / "cache")
        local = pd.DataFrame(values, columns=["a", "b", "c", "d"]).assign(id=np.arange(1500))
        df = spark.createDataFrame(local).repartition(2)
        rows = df.select("id", udf("a", "b", "c", "d").alias("p")).collect()
    finally:
        sys.modules.pop("spark_features", None)
        sys.path[:] = [p for p in sys.path if not p.startswith(str(folder))]
    assert [p for _, p in sorted((r["id"], r["p"]) for r in rows)] == expected
