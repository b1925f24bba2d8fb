"""s3:// sources against moto's S3 server on loopback, through s3fs."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest

from restpredict.errors import (
    IntegrityError,
    SourceAccessError,
    SourceNotFoundError,
    SourceUnavailableError,
)
from restpredict.model.loading import load_model
from restpredict.sources import resolve
from tests.sources.helpers import same_answers
from tests.sources.servers import moto_server


def test_joblib_file(aws: str, bucket: str, iris_path: Path, tmp_path: Path) -> None:
    resolved = resolve(f"s3://{bucket}/iris.joblib", cache_dir=tmp_path)
    assert resolved.source == f"s3://{bucket}/iris.joblib"
    assert resolved.model_file.is_relative_to(tmp_path)
    assert resolved.model_file.read_bytes() == iris_path.read_bytes()
    assert resolved.revision is not None and "ETag=" in resolved.revision
    same_answers(resolved, iris_path)


def test_unchanged_object_is_reused_and_a_new_one_fetched(
    aws: str, bucket: str, iris_path: Path, iris_int_path: Path, tmp_path: Path
) -> None:
    s3 = boto3.client("s3")
    s3.upload_file(str(iris_path), bucket, "moving.joblib")
    first = resolve(f"s3://{bucket}/moving.joblib", cache_dir=tmp_path)
    again = resolve(f"s3://{bucket}/moving.joblib", cache_dir=tmp_path)
    assert again.model_file == first.model_file
    assert again.model_file.stat().st_mtime_ns == first.model_file.stat().st_mtime_ns
    s3.upload_file(str(iris_int_path), bucket, "moving.joblib")
    changed = resolve(f"s3://{bucket}/moving.joblib", cache_dir=tmp_path)
    assert changed.model_file != first.model_file
    assert changed.model_file.read_bytes() == iris_int_path.read_bytes()


def test_offline_uses_the_cache_only(
    aws: str, bucket: str, iris_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SourceUnavailableError, match="offline, and not in the cache"):
        resolve(f"s3://{bucket}/iris.joblib", cache_dir=tmp_path, offline=True)
    online = resolve(f"s3://{bucket}/iris.joblib", cache_dir=tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    offline = resolve(f"s3://{bucket}/iris.joblib", cache_dir=tmp_path, offline=True)
    assert offline.model_file == online.model_file


def test_mlflow_folder(aws: str, bucket: str, iris_path: Path, tmp_path: Path) -> None:
    resolved = resolve(f"s3://{bucket}/mlflow", cache_dir=tmp_path)
    assert resolved.mlflow is not None
    assert resolved.mlflow.serialization_format == "skops"
    assert resolved.model_file.name == "model.skops"
    assert (resolved.local_path / "MLmodel").is_file()
    same_answers(resolved, iris_path)


def test_missing_object(aws: str, bucket: str, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError) as caught:
        resolve(f"s3://{bucket}/nope.joblib", cache_dir=tmp_path)
    assert caught.value.detail.startswith(f"s3://{bucket}/nope.joblib: not found")
    assert caught.value.exit_code == 7


def test_sha256_pin_applies_to_the_downloaded_bytes(aws: str, bucket: str, tmp_path: Path) -> None:
    resolved = resolve(f"s3://{bucket}/iris.joblib", cache_dir=tmp_path)
    with pytest.raises(IntegrityError, match="refusing to unpickle"):
        load_model(resolved.model_file, sha256="0" * 64)


def test_wrong_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with moto_server(auth=True) as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        with pytest.raises(SourceAccessError) as caught:
            resolve("s3://models/iris.joblib", cache_dir=tmp_path)
    message = caught.value.detail
    assert message.startswith("s3://models/iris.joblib: access denied")
    assert "not-the-secret" not in message
    assert not any(p.name.startswith(".partial") for p in tmp_path.rglob("*"))
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in str(caught.value)


def test_a_pin_mismatch_names_the_source(aws: str, bucket: str, tmp_path: Path) -> None:
    from restpredict.model.prepare import load_source
    from restpredict.settings import Settings

    settings = Settings(sha256="0" * 64, cache_dir=tmp_path)
    with pytest.raises(IntegrityError) as caught:
        load_source(f"s3://{bucket}/iris.joblib", settings, allow_version_mismatch=False)
    assert caught.value.detail.startswith(f"s3://{bucket}/iris.joblib: {tmp_path}")
    assert caught.value.detail.endswith(f"expected {'0' * 64}; refusing to unpickle it")
