"""The ``docker:`` and ``kubernetes:`` sections of restpredict.yaml, validated.

:class:`DeploySettings` is :class:`restpredict.settings.Settings` with these two sections, read
by ``dockerize`` and ``init`` through :func:`load_deploy_settings`; ``serve`` reads the same file
as plain Settings and never imports this module. They are about shipping, not serving.

Every string ends up in a Dockerfile or a YAML manifest, so each one is checked here: no
newlines or control characters (they would inject lines), names in the grammar the target tool
accepts (OCI image references, DNS-1123 labels, Kubernetes label keys, environment variable
names), quantities in Kubernetes' syntax. Anything that depends on the model (image name, tag,
object name) has a ``None`` default that ``restpredict.ship.dockerize`` derives from the model file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from restpredict.settings import Settings, is_uri, validate_layers

__all__ = [
    "DeploySettings",
    "DockerSettings",
    "KubernetesSettings",
    "load_deploy_settings",
    "parse_quantity",
]


def _pattern(regex: str, what: str) -> AfterValidator:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value

    return AfterValidator(check)


def _printable(value: str) -> str:
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise ValueError("must not contain newlines or other control characters")
    return value


def _number_as_text(value: object) -> object:
    """``cpu_limit: 1`` in YAML is an int; Kubernetes quantities are strings."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


# OCI distribution reference grammar (distribution/reference), IPv6 hosts left out.
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_NAME = rf"(?:{_DOMAIN}/)?{_PATH_PART}(?:/{_PATH_PART})*"
_OCI_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"
# Label values: at most 63 characters, alphanumeric at both ends (also a valid OCI tag).
_LABEL_VALUE = r"(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)"
_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_SUBDOMAIN = rf"(?=.{{1,253}}/){_DNS_LABEL}(?:\.{_DNS_LABEL})*"
_QUANTITY = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?"

Text = Annotated[str, AfterValidator(_printable)]
ImageName = Annotated[
    str,
    _pattern(
        rf"(?=.{{1,255}}$){_IMAGE_NAME}",
        "an image name without tag, e.g. registry.example.com/team/iris",
    ),
]
ImageRef = Annotated[
    str,
    _pattern(
        rf"(?=.{{1,400}}$){_IMAGE_NAME}(?::{_OCI_TAG})?(?:@{_DIGEST})?",
        "an image reference, e.g. python:3.11-slim or python:3.11-slim@sha256:<64 hex>",
    ),
]
Tag = Annotated[
    str, _pattern(_LABEL_VALUE, "1-63 letters, digits, '_', '.', '-', alphanumeric at both ends")
]
EnvName = Annotated[
    str,
    _pattern(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
]
OciLabelKey = Annotated[
    str, _pattern(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}", "a label key like org.example.team")
]
DnsSubdomain = Annotated[
    str,
    _pattern(
        rf"(?=.{{1,253}}$){_DNS_LABEL}(?:\.{_DNS_LABEL})*",
        "a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', at most 253",
    ),
]
DnsLabel = Annotated[
    str, _pattern(_DNS_LABEL, "a DNS-1123 label: 1-63 lower-case letters, digits or '-'")
]
KubeLabelKey = Annotated[
    str,
    _pattern(
        rf"(?:{_DNS_SUBDOMAIN}/)?{_LABEL_VALUE}",
        "a Kubernetes label key: [prefix/]name, name 1-63 characters",
    ),
]
KubeLabelValue = Annotated[
    str, _pattern(rf"{_LABEL_VALUE}?", "a Kubernetes label value: at most 63 characters")
]
Quantity = Annotated[
    str,
    BeforeValidator(_number_as_text),
    _pattern(_QUANTITY, "a Kubernetes quantity, e.g. 500m, 1, 512Mi, 1Gi"),
]
FileName = Annotated[
    str,
    _pattern(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", "a plain file name of [A-Za-z0-9._-]"),
]
DebianPackage = Annotated[
    str, _pattern(r"[a-z0-9][a-z0-9+.-]{1,99}", "a Debian package name like libgomp1")
]
PinnedRequirement = Annotated[
    str,
    _pattern(
        r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\[[A-Za-z0-9._,-]+\])?==[A-Za-z0-9.!+_-]+",
        "pinned as name==version (or name[extra]==version), so the image is reproducible",
    ),
]

_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.I)
# Set by the Dockerfile for a read-only root filesystem; overriding them breaks the image.
_RESERVED_ENV = frozenset(
    {
        "PATH",
        "HOME",
        "TMPDIR",
        "JOBLIB_TEMP_FOLDER",
        "SCIKIT_LEARN_DATA",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONUNBUFFERED",
        "PYTHONPATH",
    }
)
# Set in the Deployment from docker.model_fetch and kubernetes.tls_secret.
_MANAGED_ENV = frozenset({"RESTPREDICT_MODEL", "RESTPREDICT_SHA256", "RESTPREDICT_CACHE_DIR"})
_RESERVED_KUBE_LABELS = frozenset(
    f"app.kubernetes.io/{n}" for n in ("name", "instance", "version", "component", "managed-by")
)


def _check_env(env: dict[str, str]) -> dict[str, str]:
    for name in env:
        if name in _RESERVED_ENV:
            raise ValueError(f"{name} is set by the generated image and cannot be overridden")
        if _SECRET_NAME.search(name):
            raise ValueError(
                f"{name} looks like a secret: pass it at run time (docker run -e, a Kubernetes "
                "Secret), never bake it into an image or a manifest"
            )
    return env


Environment = Annotated[dict[EnvName, Text], AfterValidator(_check_env)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class DockerSettings(_Section):
    """How ``restpredict dockerize`` builds the image (the ``docker:`` section)."""

    image: ImageName | None = Field(
        None,
        description="Image name without tag, e.g. registry.example.com/team/iris; "
        "default: the model file's stem.",
    )
    tag: Tag | None = Field(
        None,
        description='Image tag (also the app.kubernetes.io/version label); default: "model-" '
        "and the first 12 hex digits of the model's SHA-256, so a new model gets a new tag.",
    )
    python_version: Annotated[str, _pattern(r"3\.\d{1,2}", "like 3.11")] | None = Field(
        None,
        description="Python of the default base image (python:<version>-slim); "
        "default: the Python running dockerize, the one the dependencies are pinned for.",
    )
    base_image: ImageRef | None = Field(
        None,
        description="Base image of both stages, tag or digest required; "
        "default: python:<python_version>-slim.",
    )
    model_filename: FileName | None = Field(
        None,
        description="File name of the model inside the image (/models/<name>); "
        "default: the model file's own name.",
    )
    port: int = Field(
        8080,
        ge=1024,
        le=65535,
        description="Port the server listens on inside the container (a non-root user "
        "with no capabilities cannot bind below 1024).",
    )
    workers: int = Field(
        1, ge=1, le=64, description="Worker processes per container; scale out with replicas."
    )
    uid: int = Field(
        10001,
        ge=1000,
        le=2**31 - 1,
        description="Numeric user and group id the server runs as (never root).",
    )
    extra_pip: tuple[PinnedRequirement, ...] = Field(
        (), description="Extra pip requirements for the image, each pinned as name==version."
    )
    system_packages: tuple[DebianPackage, ...] = Field(
        (),
        description="System packages installed with apt-get in the image, beside those found "
        "automatically (libgomp1 for LightGBM/XGBoost).",
    )
    env: Environment = Field(
        {}, description="Environment variables baked into the image; no secrets."
    )
    labels: dict[OciLabelKey, Text] = Field(
        {}, description="Extra OCI image labels (restpredict.* are reserved)."
    )
    model_fetch: Literal["bake", "startup"] = Field(
        "bake",
        description="bake: a remote model is fetched now and copied into the image, pinned "
        "by SHA-256; startup: the image holds no model and each container fetches the source "
        "(pinned to the SHA-256 resolved now) into its cache when it starts.",
    )

    @field_validator("base_image")
    @classmethod
    def _pinned_base(cls, value: str | None) -> str | None:
        if value is not None:
            name, _, digest = value.partition("@")
            last = name.rpartition("/")[2]
            tag = last.rpartition(":")[2] if ":" in last else None
            if not digest and not tag:
                raise ValueError("pin a tag or a digest (e.g. python:3.11-slim)")
            if not digest and tag == "latest":
                raise ValueError("'latest' changes under you; pin a version tag or a digest")
        return value

    @field_validator("labels")
    @classmethod
    def _no_reserved_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            if key.startswith("restpredict."):
                raise ValueError(f"{key} is reserved for restpredict's provenance labels")
        return labels


class KubernetesSettings(_Section):
    """What goes into the Kubernetes manifests (the ``kubernetes:`` section)."""

    name: DnsLabel | None = Field(
        None, description="Name of every object and the container; default: from the image name."
    )
    namespace: DnsLabel | None = Field(
        None, description="Namespace of every object; default: none, left to kubectl -n."
    )
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = Field(
        "IfNotPresent", description="When the kubelet pulls the image (tags are per model)."
    )
    service_port: int = Field(80, ge=1, le=65535, description="Port of the ClusterIP Service.")
    autoscaling: bool = Field(
        True,
        description="Write a HorizontalPodAutoscaler (and no fixed replica count, which "
        "`kubectl apply` would otherwise reset); false: a fixed `replicas`.",
    )
    replicas: int = Field(2, ge=1, le=1000, description="Fixed replicas when autoscaling is off.")
    min_replicas: int = Field(2, ge=1, le=1000, description="HPA lower bound.")
    max_replicas: int = Field(10, ge=1, le=1000, description="HPA upper bound.")
    target_cpu_utilization: int = Field(
        70, ge=10, le=100, description="HPA target: average CPU use, % of cpu_request."
    )
    cpu_request: Quantity = Field("500m", description="CPU request per pod (HPA's 100%).")
    cpu_limit: Quantity = Field("1", description="CPU limit per pod.")
    memory_request: Quantity = Field("512Mi", description="Memory request per pod.")
    memory_limit: Quantity = Field("1Gi", description="Memory limit per pod.")
    tmp_size_limit: Quantity = Field("256Mi", description="Size limit of the /tmp emptyDir.")
    max_unavailable: int = Field(
        1, ge=1, description="PodDisruptionBudget: pods a drain may take down at once."
    )
    prestop_seconds: int = Field(
        5, ge=0, le=300, description="Pause before SIGTERM so endpoints drop the pod first."
    )
    termination_grace_seconds: int = Field(
        45,
        ge=1,
        le=3600,
        description="Grace before SIGKILL: prestop_seconds plus the server's 30 s "
        "graceful shutdown, with headroom.",
    )
    env: Environment = Field(
        {}, description="Extra environment variables of the container; no secrets."
    )
    startup_timeout_seconds: int | None = Field(
        None,
        ge=10,
        le=3600,
        description="How long the startup probe waits for the model to load before the "
        "kubelet restarts the container; default: 120, or 600 with docker.model_fetch: startup "
        "(the download comes first).",
    )
    model_credentials_secret: DnsSubdomain | None = Field(
        None,
        description="With docker.model_fetch: startup, a Secret whose keys become the "
        "container's environment (AWS_ACCESS_KEY_ID, AZURE_STORAGE_KEY, MLFLOW_TRACKING_TOKEN, "
        "...): the credentials the fetch uses, never written into the manifest or the image.",
    )
    service_account: DnsSubdomain | None = Field(
        None,
        description="serviceAccountName of the pod, for workload identity (EKS IRSA or Pod "
        "Identity, GKE Workload Identity, Azure Workload Identity) instead of a Secret.",
    )
    model_cache_size_limit: Quantity = Field(
        "1Gi",
        description="With docker.model_fetch: startup, size limit of the emptyDir the model "
        "is downloaded into (the model, or an MLflow folder or unpacked archive, fits in it).",
    )
    tls_secret: DnsSubdomain | None = Field(
        None,
        description="A kubernetes.io/tls Secret (tls.crt, tls.key) mounted read-only: the "
        "server speaks HTTPS with it, and the probes switch to HTTPS.",
    )
    tls_client_auth: bool = Field(
        False,
        description="Mutual TLS: clients must present a certificate signed by the tls_secret's "
        "ca.crt (the kubelet cannot, so the probes check the port instead).",
    )
    labels: dict[KubeLabelKey, KubeLabelValue] = Field(
        {}, description="Extra labels of every object and the pod."
    )
    annotations: dict[KubeLabelKey, Text] = Field(
        {}, description="Extra annotations of the pod template."
    )

    @field_validator("labels")
    @classmethod
    def _no_reserved_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            if key in _RESERVED_KUBE_LABELS:
                raise ValueError(f"{key} is set by restpredict (the selector uses it)")
        return labels

    @field_validator("annotations")
    @classmethod
    def _no_reserved_annotations(cls, annotations: dict[str, str]) -> dict[str, str]:
        for key in annotations:
            if key.startswith("restpredict."):
                raise ValueError(f"{key} is reserved for restpredict's provenance annotations")
        return annotations

    @model_validator(mode="after")
    def _consistent(self) -> KubernetesSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        if self.termination_grace_seconds <= self.prestop_seconds:
            raise ValueError("termination_grace_seconds must exceed prestop_seconds")
        for kind in ("cpu", "memory"):
            request, limit = getattr(self, f"{kind}_request"), getattr(self, f"{kind}_limit")
            if parse_quantity(request) > parse_quantity(limit):
                raise ValueError(f"{kind}_request {request} exceeds {kind}_limit {limit}")
        if self.tls_client_auth and self.tls_secret is None:
            raise ValueError("tls_client_auth needs tls_secret (its ca.crt checks the clients)")
        for name in self.env:
            if name in _MANAGED_ENV or name.startswith("RESTPREDICT_TLS_"):
                raise ValueError(f"env: {name} is set by dockerize from the other settings")
        return self


class DeploySettings(Settings):
    """Settings plus how the image and the Kubernetes manifests are built."""

    docker: DockerSettings = Field(
        default_factory=lambda: DockerSettings.model_validate({}),
        description="The image `restpredict dockerize` builds.",
    )
    kubernetes: KubernetesSettings = Field(
        default_factory=lambda: KubernetesSettings.model_validate({}),
        description="The manifests `restpredict dockerize` writes.",
    )

    @model_validator(mode="after")
    def _fetch_needs_a_remote_source(self) -> DeploySettings:
        if self.docker.model_fetch == "startup":
            if self.model is not None and not is_uri(self.model):
                raise ValueError(
                    "docker.model_fetch: startup needs a remote source (s3://, gs://, az://, "
                    "http(s)://, models:/, runs:/); a local model is baked into the image"
                )
        elif self.kubernetes.model_credentials_secret is not None:
            raise ValueError(
                "kubernetes.model_credentials_secret needs docker.model_fetch: startup "
                "(a baked image fetches nothing, so it needs no credentials)"
            )
        return self


def load_deploy_settings(
    config: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    require_model: bool = False,
    **overrides: Any,
) -> DeploySettings:
    """``settings.load_settings`` with the ``docker:`` and ``kubernetes:`` sections checked."""
    return validate_layers(
        DeploySettings, config, environ=environ, require_model=require_model, **overrides
    )


_SUFFIXES = {"m": Decimal("0.001"), "": Decimal(1)}
_SUFFIXES.update({s: Decimal(1000) ** (i + 1) for i, s in enumerate("kMGTPE")})
_SUFFIXES.update({s + "i": Decimal(1024) ** (i + 1) for i, s in enumerate("KMGTPE")})


def parse_quantity(quantity: str) -> Decimal:
    """The value of a Kubernetes quantity (``500m`` is 0.5, ``1Gi`` is 2**30)."""
    match = re.fullmatch(r"([0-9.]+)([eE][+-]?\d+)?([A-Za-z]*)", quantity)
    if match is None or match.group(3) not in _SUFFIXES:
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    number = Decimal(match.group(1) + (match.group(2) or ""))
    return number * _SUFFIXES[match.group(3)]
