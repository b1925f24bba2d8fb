from __future__ import annotations

import pytest

from restpredict.errors import ConfigError
from restpredict.sources import parse_source, redact


@pytest.mark.parametrize(
    ("text", "kind", "name"),
    [
        pytest.param("model.joblib", "local", "model", id="relative"),
        pytest.param("/srv/m/churn.skops", "local", "churn", id="absolute"),
        pytest.param("file:///srv/m/churn.pkl", "local", "churn", id="file-url"),
        pytest.param("mlruns/0/models/m-9f/artifacts", "local", "m-9f", id="mlflow-artifacts"),
        pytest.param("models:/churn/3", "registry", "churn", id="version"),
        pytest.param("models:/churn@champion", "registry", "churn", id="alias"),
        pytest.param("models:/m-0123abc", "registry", "m-0123abc", id="logged-model"),
        pytest.param("runs:/abc123/model", "run", "model", id="run"),
        pytest.param("s3://bucket/dir/model.joblib", "remote", "model", id="s3"),
        pytest.param("gs://bucket/model.tar.gz", "remote", "model", id="gcs-archive"),
        pytest.param("abfs://container/model", "remote", "model", id="azure"),
        pytest.param("https://h.example/m.pkl?sig=x", "remote", "m", id="https"),
    ],
)
def test_parse(text: str, kind: str, name: str) -> None:
    ref = parse_source(text)
    assert (ref.kind, ref.name) == (kind, name)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("ftp://host/m.pkl", id="unknown-scheme"),
        pytest.param("models:/churn", id="no-version"),
        pytest.param("models://churn/1", id="two-slashes"),
        pytest.param("runs:/abc", id="run-without-path"),
        pytest.param("s3:///key", id="no-bucket"),
        pytest.param("  ", id="empty"),
    ],
)
def test_bad_sources_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_source(text)


def test_unknown_scheme_error_hides_credentials() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_source("ftp://alice:s3cret@host/m.pkl")
    assert "s3cret" not in caught.value.detail
    assert "alice" not in caught.value.detail


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param(
            "https://alice:s3cret@h.example/m.pkl", "https://***@h.example/m.pkl", id="userinfo"
        ),
        pytest.param(
            "https://b.s3.amazonaws.com/m.pkl?X-Amz-Credential=AKIA&X-Amz-Signature=abc#frag",
            "https://b.s3.amazonaws.com/m.pkl?X-Amz-Credential=***&X-Amz-Signature=***",
            id="presigned",
        ),
        pytest.param("s3://bucket/m.pkl", "s3://bucket/m.pkl", id="plain"),
        pytest.param("/srv/m.pkl", "/srv/m.pkl", id="path"),
    ],
)
def test_redact(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert parse_source(text).display == shown
