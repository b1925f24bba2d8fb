"""The docker: and kubernetes: sections: the grammars their values must follow."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from restpredict.ship.deploy_settings import DockerSettings, KubernetesSettings, parse_quantity


@pytest.mark.parametrize(
    "image",
    ["iris", "team/iris", "registry.example.com/team/iris", "localhost:5000/a_b/c__d", "a-b--c"],
)
def test_valid_image_names(image: str) -> None:
    assert DockerSettings.model_validate({"image": image}).image == image


@pytest.mark.parametrize(
    "image", ["Iris", "iris:1.0", "iris@sha256:" + "a" * 64, "-iris", "team//iris", "iris_", ""]
)
def test_invalid_image_names(image: str) -> None:
    with pytest.raises(ValidationError):
        DockerSettings.model_validate({"image": image})


@pytest.mark.parametrize(
    "base",
    [
        "python:3.11-slim",
        "docker.io/library/python:3.12-slim-bookworm",
        "python@sha256:" + "0" * 64,
        "python:3.11-slim@sha256:" + "f" * 64,
        "registry.example.com:443/base/python:3.11",
    ],
)
def test_valid_base_images(base: str) -> None:
    assert DockerSettings.model_validate({"base_image": base}).base_image == base


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ("python", "pin a tag or a digest"),
        ("registry.example.com:443/python", "pin a tag or a digest"),
        ("python:latest", "'latest' changes under you"),
        ("python:3.11 slim", "must be an image reference"),
        ("python:3.11\nRUN id", "must be an image reference"),
        ("python@sha256:abc", "must be an image reference"),
    ],
)
def test_invalid_base_images(base: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DockerSettings.model_validate({"base_image": base})


@pytest.mark.parametrize("tag", ["1.0.0", "v2", "model-0123456789ab", "a" * 63, "2024_01_01"])
def test_valid_tags(tag: str) -> None:
    assert DockerSettings.model_validate({"tag": tag}).tag == tag


@pytest.mark.parametrize("tag", ["", "-x", "x-", "a" * 64, "1.0+build", "a b"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(ValidationError):
        DockerSettings.model_validate({"tag": tag})


@pytest.mark.parametrize("name", ["iris", "a", "iris-2", "a" * 63])
def test_valid_kubernetes_names(name: str) -> None:
    assert KubernetesSettings.model_validate({"name": name, "namespace": name}).name == name


@pytest.mark.parametrize("name", ["Iris", "iris_2", "-iris", "iris-", "a" * 64, "a.b"])
def test_invalid_kubernetes_names(name: str) -> None:
    with pytest.raises(ValidationError, match="DNS-1123"):
        KubernetesSettings.model_validate({"name": name})


@pytest.mark.parametrize(
    ("labels", "ok"),
    [
        ({"team": "risk"}, True),
        ({"example.com/cost-center": "cc-42"}, True),
        ({"team": ""}, True),
        ({"team": "a b"}, False),
        ({"bad key": "x"}, False),
        ({"team": "x" * 64}, False),
        ({"app.kubernetes.io/name": "other"}, False),
        ({"app.kubernetes.io/part-of": "shop"}, True),
    ],
)
def test_kubernetes_labels(labels: dict[str, str], ok: bool) -> None:
    if ok:
        assert KubernetesSettings.model_validate({"labels": labels}).labels == labels
    else:
        with pytest.raises(ValidationError):
            KubernetesSettings.model_validate({"labels": labels})


@pytest.mark.parametrize(
    ("quantity", "value"),
    [
        ("500m", Decimal("0.5")),
        ("1", Decimal(1)),
        ("1.5", Decimal("1.5")),
        ("512Mi", Decimal(512 * 2**20)),
        ("1Gi", Decimal(2**30)),
        ("2G", Decimal(2 * 10**9)),
        ("1e3", Decimal(1000)),
    ],
)
def test_parse_quantity(quantity: str, value: Decimal) -> None:
    assert parse_quantity(quantity) == value


@pytest.mark.parametrize("quantity", ["lots", "1 Gi", "-1", "1gi", "Mi", "1.5.5"])
def test_invalid_quantities(quantity: str) -> None:
    with pytest.raises(ValidationError, match="Kubernetes quantity"):
        KubernetesSettings.model_validate({"tmp_size_limit": quantity})


def test_numbers_are_quantities() -> None:
    settings = KubernetesSettings.model_validate({"cpu_request": 0.5, "cpu_limit": 2})
    assert (settings.cpu_request, settings.cpu_limit) == ("0.5", "2")


@pytest.mark.parametrize(
    "env",
    [
        {"PATH": "/x"},
        {"HOME": "/root"},
        {"API_KEY": "x"},
        {"my_token": "x"},
        {"AWS_SECRET_ACCESS_KEY": "x"},
        {"A-B": "x"},
        {"A": "line\nnext"},
        {"A": "tab\there"},
    ],
)
def test_rejected_environment(env: dict[str, str]) -> None:
    for section in (DockerSettings, KubernetesSettings):
        with pytest.raises(ValidationError):
            section.model_validate({"env": env})


def test_cross_field_checks() -> None:
    with pytest.raises(ValidationError, match="min_replicas must not exceed max_replicas"):
        KubernetesSettings.model_validate({"min_replicas": 5, "max_replicas": 3})
    with pytest.raises(ValidationError, match="cpu_request 2 exceeds cpu_limit 1500m"):
        KubernetesSettings.model_validate({"cpu_request": "2", "cpu_limit": "1500m"})
    with pytest.raises(ValidationError, match="exceed prestop_seconds"):
        KubernetesSettings.model_validate({"prestop_seconds": 30, "termination_grace_seconds": 30})


@pytest.mark.parametrize(
    "extra", [["lightgbm"], ["xgboost>=2"], ["pkg @ https://x/y.whl"], ["a==1; python_version<'3'"]]
)
def test_extra_pip_must_be_pinned(extra: list[str]) -> None:
    with pytest.raises(ValidationError, match="pinned as name==version"):
        DockerSettings.model_validate({"extra_pip": extra})


def test_reserved_provenance_keys() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        DockerSettings.model_validate({"labels": {"restpredict.model.sha256": "0" * 64}})
    with pytest.raises(ValidationError, match="reserved"):
        KubernetesSettings.model_validate({"annotations": {"restpredict.model.sha256": "x"}})


@pytest.mark.parametrize(("field", "value"), [("port", 80), ("port", 65536), ("uid", 0)])
def test_ranges(field: str, value: int) -> None:
    with pytest.raises(ValidationError):
        DockerSettings.model_validate({field: value})
