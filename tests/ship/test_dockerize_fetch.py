"""dockerize with ``docker.model_fetch: startup`` and with ``kubernetes.tls_secret``: golden
files, hadolint, strict Kubernetes validation, and what each setting puts where.

The image of a fetching build holds no model: the Deployment names the source and its pin,
credentials come from a Secret (``envFrom``) or the pod's service account, the cache is an
emptyDir. Update the golden files with ``RESTPREDICT_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from restpredict.errors import ConfigError
from restpredict.ship.deploy_settings import load_deploy_settings
from restpredict.ship.dockerize import (
    BuildPlan,
    ModelFacts,
    plan_build,
    render_build_context,
)
from tests.ship.test_dockerize import GOLDEN, KUBERNETES_VERSIONS, PINS, SHA, UPDATE, hadolint

CONFIGS = {
    "fetch-s3": """
model: s3://models/churn/model.joblib
docker:
  python_version: "3.11"
  model_fetch: startup
kubernetes:
  model_credentials_secret: churn-s3-reader
  model_cache_size_limit: 2Gi
""",
    "fetch-mlflow-mtls": """
model: models:/churn@champion
docker:
  python_version: "3.11"
  model_fetch: startup
kubernetes:
  service_account: churn-reader
  startup_timeout_seconds: 900
  tls_secret: churn-tls
  tls_client_auth: true
  env:
    MLFLOW_TRACKING_URI: http://mlflow.ml.svc:5000
""",
    "bake-tls": """
model: iris.joblib
docker:
  python_version: "3.11"
kubernetes:
  tls_secret: iris-tls
""",
}
FILENAMES = {"fetch-s3": "model.joblib", "fetch-mlflow-mtls": "churn.skops"}


def plan_for(tmp_path: Path, case: str) -> BuildPlan:
    config = tmp_path / "restpredict.yaml"
    config.write_text(CONFIGS[case])
    settings = load_deploy_settings(config)
    assert settings.model is not None
    facts = ModelFacts(FILENAMES.get(case, Path(settings.model).name), SHA, "1.9.1")
    return plan_build(settings, facts)


def rendered(tmp_path: Path, case: str) -> dict[str, str]:
    return render_build_context(plan_for(tmp_path, case), PINS)


def deployment(tmp_path: Path, case: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(rendered(tmp_path, case)["k8s.yaml"]) if d]
    assert docs[0]["kind"] == "Deployment"
    return docs[0]


def container_of(tmp_path: Path, case: str) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = deployment(tmp_path, case)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def dockerfile_steps(tmp_path: Path, case: str) -> tuple[list[tuple[str, str]], DockerfileParser]:
    """(instruction, value) of every step, and the parser (labels, env of the last stage)."""
    parser = DockerfileParser(path=str(tmp_path / "Dockerfile"))
    parser.content = rendered(tmp_path, case)["Dockerfile"]
    return [(s["instruction"], s["value"]) for s in parser.structure], parser


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_golden_files(tmp_path: Path, case: str) -> None:
    files = rendered(tmp_path, case)
    directory = GOLDEN / case
    if UPDATE:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (directory / name).write_text(text)
    for name, text in files.items():
        assert text == (directory / name).read_text(), f"{case}/{name} differs from golden"


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_hadolint_is_clean(tmp_path: Path, case: str) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(rendered(tmp_path, case)["Dockerfile"])
    result = subprocess.run(
        [hadolint(), "-f", "json", str(dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert json.loads(result.stdout) == [], result.stdout
    assert result.returncode == 0


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_manifests_validate_strictly(tmp_path: Path, case: str, version: str) -> None:
    for doc in yaml.safe_load_all(rendered(tmp_path, case)["k8s.yaml"]):
        if doc:
            kubernetes_validate.validate(doc, version, strict=True)


def test_fetching_image_holds_no_model_and_names_the_source(tmp_path: Path) -> None:
    files = rendered(tmp_path, "fetch-s3")
    steps, parser = dockerfile_steps(tmp_path, "fetch-s3")
    assert not any(ins == "COPY" and "model.joblib" in value for ins, value in steps)
    assert "model.joblib" not in files[".dockerignore"]  # the context has none to send
    env = parser.envs
    assert env["RESTPREDICT_MODEL"] == "s3://models/churn/model.joblib"
    assert env["RESTPREDICT_SHA256"] == SHA
    assert env["RESTPREDICT_CACHE_DIR"] == "/var/cache/restpredict"
    assert parser.labels["restpredict.model.source"] == "s3://models/churn/model.joblib"
    cmd = json.loads(dict(steps)["CMD"])
    assert cmd[:2] == ["serve", "--host"]  # no model path, no --sha256: ENV above, overridable
    assert "--sha256" not in cmd
    check = [json.loads(v) for ins, v in steps if ins == "RUN" and v.startswith("[")][-1]
    assert check[-1] == "import restpredict.sources.resolve, s3fs"  # the backend is there
    assert "--start-period=300s" in dict(steps)["HEALTHCHECK"]


def test_fetching_deployment_gets_source_pin_secret_and_cache(tmp_path: Path) -> None:
    pod, container = container_of(tmp_path, "fetch-s3")
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {
        "RESTPREDICT_MODEL": "s3://models/churn/model.joblib",
        "RESTPREDICT_SHA256": SHA,
        "RESTPREDICT_CACHE_DIR": "/var/cache/restpredict",
    }
    assert container["envFrom"] == [{"secretRef": {"name": "churn-s3-reader"}}]
    assert {"name": "model-cache", "mountPath": "/var/cache/restpredict"} in container[
        "volumeMounts"
    ]
    assert {"name": "model-cache", "emptyDir": {"sizeLimit": "2Gi"}} in pod["volumes"]
    assert "serviceAccountName" not in pod
    assert pod["automountServiceAccountToken"] is False
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 600  # the download first
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"


def test_workload_identity_and_mutual_tls(tmp_path: Path) -> None:
    pod, container = container_of(tmp_path, "fetch-mlflow-mtls")
    assert pod["serviceAccountName"] == "churn-reader"
    assert "envFrom" not in container
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["RESTPREDICT_MODEL"] == "models:/churn@champion"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.ml.svc:5000"
    assert env["RESTPREDICT_TLS_CLIENT_CA"] == "/etc/restpredict/tls/ca.crt"
    # The kubelet has no client certificate: with mutual TLS the probes open the port only.
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe].get("tcpSocket") == {"port": "http"}, probe
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 900
    check = rendered(tmp_path, "fetch-mlflow-mtls")["Dockerfile"]
    assert '"import restpredict.sources.resolve, mlflow"' in check


def test_tls_secret_is_mounted_read_only_and_probes_use_https(tmp_path: Path) -> None:
    pod, container = container_of(tmp_path, "bake-tls")
    assert {"name": "tls", "secret": {"secretName": "iris-tls", "defaultMode": 0o440}} in pod[
        "volumes"
    ]
    mount = {"name": "tls", "mountPath": "/etc/restpredict/tls", "readOnly": True}
    assert mount in container["volumeMounts"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {
        "RESTPREDICT_TLS_CERT": "/etc/restpredict/tls/tls.crt",
        "RESTPREDICT_TLS_KEY": "/etc/restpredict/tls/tls.key",
    }
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS", probe
    # A baked image keeps its model and its start-up patience.
    assert container["startupProbe"]["failureThreshold"] == 60
    assert "RESTPREDICT_MODEL" not in rendered(tmp_path, "bake-tls")["Dockerfile"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "model: iris.joblib\ndocker: {model_fetch: startup}\n",
            "needs a remote source",
            id="local-source",
        ),
        pytest.param(
            "model: https://example.com/m.joblib?sig=abc\ndocker: {model_fetch: startup}\n",
            "carries credentials",
            id="presigned-url",
        ),
        pytest.param(
            "model: https://user:pw@example.com/m.joblib\ndocker: {model_fetch: startup}\n",
            "carries credentials",
            id="user-info",
        ),
        pytest.param(
            "model: s3://b/m.joblib\nkubernetes: {model_credentials_secret: creds}\n",
            "needs docker.model_fetch: startup",
            id="secret-for-a-baked-image",
        ),
        pytest.param(
            "model: s3://b/m.joblib\nkubernetes: {tls_client_auth: true}\n",
            "tls_client_auth needs tls_secret",
            id="client-auth-without-tls",
        ),
        pytest.param(
            "model: s3://b/m.joblib\nkubernetes: {env: {RESTPREDICT_SHA256: abc}}\n",
            "set by dockerize",
            id="managed-env",
        ),
        pytest.param(
            "model: s3://b/m.joblib\nkubernetes: {tls_secret: Not_A_Name}\n",
            "DNS-1123 subdomain",
            id="secret-name",
        ),
    ],
)
def test_settings_that_cannot_work(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "restpredict.yaml"
    config.write_text(text)
    (tmp_path / "iris.joblib").write_bytes(b"")
    with pytest.raises(ConfigError, match=message):
        settings = load_deploy_settings(config)
        plan_build(settings, ModelFacts("m.joblib", SHA, "1.9.1"))
