"""From a model file and restpredict.yaml to a container build context and Kubernetes manifests.

A pure core (:func:`plan_build`, then ``render_*`` from the plan: strings only, no I/O) and a
thin shell (:func:`write_build_context`) that loads the model, builds restpredict's wheel,
pins the dependencies and writes the files. The context builds with nothing but itself::

    Dockerfile  .dockerignore  requirements.txt  wheels/restpredict-<v>-py3-none-any.whl
    <model file>  k8s.yaml (not sent to the builder: .dockerignore lets only the first four in)
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restpredict._version import __version__
from restpredict.errors import BuildContextError, ConfigError
from restpredict.model.dependencies import find_dependencies
from restpredict.model.loading import SKOPS_SUFFIXES, LoadedModel
from restpredict.model.prepare import load_source
from restpredict.settings import Settings, is_uri
from restpredict.ship.deploy_settings import DeploySettings, DockerSettings, KubernetesSettings
from restpredict.ship.distribution import build_wheel, pinned_requirements, wheel_name
from restpredict.ship.requirements import merge_recorded
from restpredict.ship.templates import render_template
from restpredict.sources.uri import EXTRAS, parse_source, redact

__all__ = [
    "BuildPlan",
    "ModelFacts",
    "WrittenContext",
    "plan_build",
    "render_build_context",
    "render_dockerfile",
    "render_dockerignore",
    "render_manifests",
    "render_requirements",
    "write_build_context",
]

MODEL_DIR = "/models"
CODE_DIR = "/opt/restpredict/code"
#: Where a fetch-at-start-up image caches its model (an emptyDir in Kubernetes, a tmpfs in docker).
CACHE_DIR = "/var/cache/restpredict"
#: Where the tls_secret is mounted; a kubernetes.io/tls Secret's keys are its file names.
TLS_DIR = "/etc/restpredict/tls"
# The module each fetch needs, imported once at build time so a missing backend fails the build.
_FETCH_MODULES = {"s3": "s3fs", "gcs": "gcsfs", "azure": "adlfs", "http": "aiohttp"}
MANIFESTS = "k8s.yaml"
_SAFE_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# `serve` settings the container passes on as flags when they differ from the defaults.
_SERVE_FLAGS = {
    "max_body_bytes": "--max-body-bytes",
    "max_rows": "--max-rows",
    "unknown_columns": "--unknown-columns",
    "log_level": "--log-level",
    "log_format": "--log-format",
    "max_concurrency": "--max-concurrency",
    "header_timeout": "--header-timeout",
    "body_timeout": "--body-timeout",
    "keep_alive_timeout": "--keep-alive-timeout",
    "prediction_timeout": "--prediction-timeout",
    "reload_timeout": "--reload-timeout",
    "drain_seconds": "--drain-seconds",
    "shutdown_timeout": "--shutdown-timeout",
}
# Repeatable flags; the API key is never baked into an image (mount it, see docs/security.md).
_SERVE_LIST_FLAGS = {"open_paths": "--open-path", "cors_origins": "--cors-origin"}


@dataclass(frozen=True)
class ModelFacts:
    """What a build needs to know about the model file; no estimator, so tests can make one."""

    filename: str
    sha256: str
    sklearn_version: str
    distributions: dict[str, str] = dataclasses.field(default_factory=dict)
    unprovided: tuple[str, ...] = ()
    system_packages: tuple[str, ...] = ()
    recorded_requirements: tuple[str, ...] = ()  # an MLflow model's requirements.txt

    @classmethod
    def of(cls, model: LoadedModel, path: Path, code_paths: tuple[Path, ...] = ()) -> ModelFacts:
        """The facts of a loaded model (an unknown trained version: the running one), with
        the distributions and system packages its object graph and code paths need.

        A model fetched or read from an MLflow folder is baked under its source's name
        (``churn.skops`` rather than ``model.skops``), and the scikit-learn version its MLmodel
        recorded is the one pinned.
        """
        name = str(model.origin.get("file_name", path.name))
        mlflow = model.origin.get("mlflow") or {}
        trained = mlflow.get("sklearn_version") or model.sklearn_trained or model.sklearn_running
        found = find_dependencies(model.estimator, code_paths)
        return cls(
            name if _SAFE_FILENAME.fullmatch(name) else path.name,
            model.sha256,
            trained,
            distributions=found.distributions,
            unprovided=found.unprovided,
            system_packages=found.system_packages,
            recorded_requirements=tuple(mlflow.get("requirements") or ()),
        )


@dataclass(frozen=True)
class BuildPlan:
    """Every value the templates need, resolved from settings and the model."""

    settings: DeploySettings
    model: ModelFacts
    image: str
    tag: str
    base_image: str
    python_version: str
    model_filename: str
    name: str
    serve_args: tuple[str, ...]
    source: str | None = None  # the URI each container fetches (model_fetch: startup)

    @property
    def reference(self) -> str:
        """The full image reference, ``image:tag``."""
        return f"{self.image}:{self.tag}"

    @property
    def docker(self) -> DockerSettings:
        """The ``docker:`` section."""
        return self.settings.docker

    @property
    def kubernetes(self) -> KubernetesSettings:
        """The ``kubernetes:`` section."""
        return self.settings.kubernetes

    @property
    def code_names(self) -> tuple[str, ...]:
        """The code paths' names in the context's ``code/`` and the image's CODE_DIR."""
        return tuple(p.name for p in self.settings.code_paths)

    @property
    def python_path(self) -> str:
        """PYTHONPATH in the image: CODE_DIR, and each plain directory of modules in it."""
        plain = [
            f"{CODE_DIR}/{p.name}"
            for p in self.settings.code_paths
            if p.is_dir() and not (p / "__init__.py").is_file()
        ]
        return ":".join([CODE_DIR, *plain])

    @property
    def system_packages(self) -> tuple[str, ...]:
        """apt packages for the image: ``docker.system_packages`` and those found."""
        return tuple(sorted({*self.docker.system_packages, *self.model.system_packages}))

    @property
    def fetch_extra(self) -> str | None:
        """The restpredict extra that fetches ``source`` (s3, gcs, azure, http, mlflow)."""
        if self.source is None:
            return None
        ref = parse_source(self.source)
        return EXTRAS[ref.scheme] if ref.kind == "remote" else "mlflow"

    @property
    def pip_extras(self) -> tuple[str, ...]:
        """restpredict extras the image needs: skops for a .skops model, the fetch's backend."""
        skops = ("skops",) if Path(self.model_filename).suffix in SKOPS_SUFFIXES else ()
        return (*skops, *filter(None, [self.fetch_extra]))

    @property
    def fetch_check(self) -> str:
        """Python the build runs to prove the image can fetch its source (its imports)."""
        extra = self.fetch_extra
        module = "mlflow" if extra == "mlflow" else _FETCH_MODULES.get(extra or "", "")
        return f"import restpredict.sources.resolve, {module}" if module else ""

    @property
    def startup_seconds(self) -> int:
        """The startup probe's patience: the download comes first in fetch mode."""
        given = self.kubernetes.startup_timeout_seconds
        return given if given is not None else (600 if self.source else 120)


def plan_build(
    settings: DeploySettings, model: ModelFacts, *, python_version: str | None = None
) -> BuildPlan:
    """Resolve the model-derived defaults; ``python_version`` defaults to the running one."""
    docker = settings.docker
    python = docker.python_version or python_version or "{}.{}".format(*sys.version_info)
    image = docker.image or _image_name(Path(model.filename).stem)
    filename = docker.model_filename or model.filename
    if not _SAFE_FILENAME.fullmatch(filename):
        raise ConfigError(
            f"model file name {filename!r} cannot be used in a Dockerfile: set "
            "docker.model_filename to a name of letters, digits, '.', '_' and '-'"
        )
    if Path(filename).suffix.lower() != Path(model.filename).suffix.lower():
        raise ConfigError(
            f"docker.model_filename {filename!r} must keep the model's suffix "
            f"{Path(model.filename).suffix!r} (it selects the loader)"
        )
    names = [p.name for p in settings.code_paths]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash or any(not _SAFE_FILENAME.fullmatch(n) for n in names):
        raise ConfigError(
            "code_paths must have distinct names of letters, digits, '.', '_' and '-' "
            f"(they become {CODE_DIR}/<name> in the image): {', '.join(clash or names)}"
        )
    source = _fetched_source(settings)
    return BuildPlan(
        settings=settings,
        model=model,
        image=image,
        tag=docker.tag or f"model-{model.sha256[:12]}",
        base_image=docker.base_image or f"python:{python}-slim",
        python_version=python,
        model_filename=filename,
        name=settings.kubernetes.name or _dns_label(image.rpartition("/")[2]),
        serve_args=_serve_args(settings, model, filename),
        source=source,
    )


def _fetched_source(settings: DeploySettings) -> str | None:
    """The source a fetch-at-start-up image names, refused if it would leak a credential."""
    if settings.docker.model_fetch != "startup":
        return None
    given = settings.model or ""
    ref = parse_source(given)
    if ref.kind == "local":
        raise ConfigError(
            f"docker.model_fetch: startup needs a remote source, and {given} is a local path: "
            "bake it (the default) or upload it"
        )
    if redact(ref.text) != ref.text:
        raise ConfigError(
            f"{ref.display}: the source carries credentials (user info or query values), "
            "which would be written into the image and the manifest; use the provider's "
            "credentials from kubernetes.model_credentials_secret or kubernetes.service_account"
        )
    return ref.text


def _image_name(stem: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    return name[:128].rstrip("-") or "restpredict-model"


def _dns_label(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63].rstrip("-") or "restpredict"


def _serve_args(settings: Settings, model: ModelFacts, filename: str) -> tuple[str, ...]:
    """Flags that make the container serve the model as ``serve`` with these settings would."""
    args: list[str] = []
    name = settings.model_name or Path(model.filename).stem
    if name != Path(filename).stem:  # keep the name clients see in paths and /metadata
        args += ["--model-name", name]
    for trusted in settings.trusted_types:
        args += ["--trusted-type", trusted]
    for code in settings.code_paths:
        args += ["--code-path", f"{CODE_DIR}/{code.name}"]
    for field, flag in _SERVE_FLAGS.items():
        value = getattr(settings, field)
        if value != Settings.model_fields[field].default:
            args += [flag, str(value)]
    for field, flag in _SERVE_LIST_FLAGS.items():
        values = getattr(settings, field)
        if values != Settings.model_fields[field].default:
            args += [part for value in values for part in (flag, value)]
    if not settings.access_log:
        args.append("--no-access-log")
    return tuple(args)


def render_dockerfile(plan: BuildPlan) -> str:
    """The multi-stage, non-root, read-only-rootfs Dockerfile."""
    docker = plan.docker
    return render_template(
        "Dockerfile.j2",
        base_image=plan.base_image,
        image_name=plan.image.rpartition("/")[2],
        image_tag=plan.tag,
        restpredict_version=__version__,
        restpredict_wheel=wheel_name(),
        sklearn_version=plan.model.sklearn_version,
        model_filename=plan.model_filename,
        model_sha256=plan.model.sha256,
        code_names=list(plan.code_names),
        system_packages=list(plan.system_packages),
        code_dir=CODE_DIR,
        python_path=plan.python_path,
        port=docker.port,
        workers=docker.workers,
        uid=docker.uid,
        extra_serve_args=list(plan.serve_args),
        extra_pip=list(docker.extra_pip),
        env=dict(docker.env),
        labels=dict(docker.labels),
        model_source=plan.source or "",
        fetch_check=plan.fetch_check,
        cache_dir=CACHE_DIR,
    )


def render_dockerignore(plan: BuildPlan) -> str:
    """A .dockerignore that sends the builder only what the Dockerfile copies."""
    return render_template(
        "dockerignore.j2",
        model_filename="" if plan.source else plan.model_filename,
        code=bool(plan.code_names),
    )


def render_manifests(plan: BuildPlan) -> str:
    """Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget, one YAML stream."""
    k8s = plan.kubernetes
    context: dict[str, Any] = k8s.model_dump(exclude={"name", "env", "labels", "annotations"})
    return render_template(
        "k8s.yaml.j2",
        **context,
        name=plan.name,
        image=plan.reference,
        version=plan.tag,
        restpredict_version=__version__,
        model_sha256=plan.model.sha256,
        port=plan.docker.port,
        uid=plan.docker.uid,
        env={**_managed_env(plan), **k8s.env},
        labels=dict(k8s.labels),
        annotations=dict(k8s.annotations),
        model_source=plan.source or "",
        cache_dir=CACHE_DIR,
        tls_dir=TLS_DIR,
        startup_failure_threshold=-(-plan.startup_seconds // 2),  # probed every 2 s
    )


def _managed_env(plan: BuildPlan) -> dict[str, str]:
    """The container's environment from the settings: the source to fetch, the TLS files.

    Environment rather than ``args``: the image's CMD stays the one serve command, and
    RESTPREDICT_* variables are settings like the flags (docs/configuration.md).
    """
    env: dict[str, str] = {}
    if plan.source is not None:
        env["RESTPREDICT_MODEL"] = plan.source
        env["RESTPREDICT_SHA256"] = plan.model.sha256
        env["RESTPREDICT_CACHE_DIR"] = CACHE_DIR
    if plan.kubernetes.tls_secret is not None:
        env["RESTPREDICT_TLS_CERT"] = f"{TLS_DIR}/tls.crt"
        env["RESTPREDICT_TLS_KEY"] = f"{TLS_DIR}/tls.key"
        if plan.kubernetes.tls_client_auth:
            env["RESTPREDICT_TLS_CLIENT_CA"] = f"{TLS_DIR}/ca.crt"
    return env


def render_requirements(plan: BuildPlan, pins: Mapping[str, str]) -> str:
    """``requirements.txt``: every runtime dependency pinned; scikit-learn to the model's."""
    pins = {**pins, "scikit-learn": plan.model.sklearn_version}
    found = ", ".join(plan.model.distributions) or "none beyond these"
    lines = [
        f"# Generated by restpredict {__version__} (`restpredict dockerize`): restpredict's "
        "runtime dependencies and the model's,",
        "# each pinned to the version installed where it was generated; scikit-learn to the "
        f"version the model was pickled with ({plan.model.sklearn_version}).",
        f"# Found in the model (and its code paths): {found}.",
        *(
            [
                "# Merged with the MLflow model's requirements.txt (where they differ, these pins "
                "win but scikit-learn; dockerize's notes name each difference)."
            ]
            if plan.model.recorded_requirements
            else []
        ),
        *(f"{name}=={version}" for name, version in sorted(pins.items())),
    ]
    return "\n".join(lines) + "\n"


def render_build_context(plan: BuildPlan, pins: Mapping[str, str]) -> dict[str, str]:
    """Every text file of the context by relative path (the model and the wheel are bytes)."""
    return {
        "Dockerfile": render_dockerfile(plan),
        ".dockerignore": render_dockerignore(plan),
        "requirements.txt": render_requirements(plan, pins),
        MANIFESTS: render_manifests(plan),
    }


@dataclass(frozen=True)
class WrittenContext:
    """What :func:`write_build_context` wrote, for the summary and the next commands."""

    output: Path
    plan: BuildPlan
    files: tuple[Path, ...]
    notes: tuple[str, ...] = ()  # things the user should know, e.g. a scikit-learn mismatch

    def next_commands(self) -> list[tuple[str, str]]:
        """(what, command) pairs: build, run locally, push, deploy."""
        ref, port, out = self.plan.reference, self.plan.docker.port, self.output
        # A fetching image needs a writable cache and the provider's credentials.
        fetch = f" --tmpfs {CACHE_DIR} --env-file model-credentials.env" if self.plan.source else ""
        return [
            ("build", f"docker build -t {ref} {out}"),
            ("or with podman", f"podman build --format docker -t {ref} {out}"),
            (
                "run locally",
                f"docker run --rm --read-only --tmpfs /tmp{fetch} -p 127.0.0.1:{port}:{port} {ref}",
            ),
            ("push", f"docker push {ref}"),
            ("deploy", f"kubectl apply -f {out / MANIFESTS}"),
        ]


def write_build_context(
    settings: DeploySettings,
    output: Path,
    *,
    force: bool = False,
    python_version: str | None = None,
) -> WrittenContext:
    """Load and verify the model, then write the build context and manifests into ``output``."""
    if settings.model is None:
        raise ConfigError("dockerize needs a model file: give MODEL or `model:` in the config")
    _check_output(output, force)
    # A model pickled with another scikit-learn is fine here: the image pins the model's own
    # version. Loading it only reads its facts; nothing is served from this process.
    # A remote source is resolved now and baked in: the image serves these exact bytes.
    given = settings.model
    model = load_source(given, settings, allow_version_mismatch=True)
    path = Path(model.source)
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != model.sha256:
        raise BuildContextError(f"{path} changed while it was being read; try again")
    mlflow = model.origin.get("mlflow") or {}
    fetch = settings.docker.model_fetch == "startup"
    code = (*settings.code_paths, *model.origin.get("code_paths", ()))  # + an MLflow code/
    if not fetch:  # fetched at start-up, the server reads the MLflow folder's trust and code
        trusted = (*settings.trusted_types, *mlflow.get("skops_trusted_types", ()))
        settings = settings.model_copy(
            update={
                "trusted_types": tuple(dict.fromkeys(trusted)),
                "code_paths": tuple(dict.fromkeys(code)),
            }
        )
    facts = ModelFacts.of(model, path, tuple(dict.fromkeys(code)))
    plan = plan_build(settings, facts, python_version=python_version)
    pins = pinned_requirements(
        plan.pip_extras, python_version=plan.python_version, also=facts.distributions
    )
    merged = merge_recorded(pins, facts.recorded_requirements)
    pins = merged.pins
    texts = render_build_context(plan, pins)  # everything rendered before anything is written
    wheels = output / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for stale in wheels.glob("*.whl"):  # --force: an older restpredict must not linger
        stale.unlink()
    written = [build_wheel(wheels)]
    for relative, text in texts.items():
        (output / relative).write_text(text, encoding="utf-8")
        written.append(output / relative)
    stale_model = output / plan.model_filename
    if not fetch:
        stale_model.write_bytes(data)
        written.append(stale_model)
    elif stale_model.is_file():  # --force over a baked context: the image must hold no model
        stale_model.unlink()
    written += _copy_code(settings.code_paths, output / "code")
    notes: list[str] = list(merged.notes)
    if facts.unprovided:
        notes.append(
            f"the model imports {', '.join(facts.unprovided)}, which no installed distribution "
            "and no code path provides: the image cannot have it, and its build will fail "
            "where it loads the model; add it with --code-path (your own code) or install it "
            "here as a package"
        )
    if plan.model.sklearn_version != model.sklearn_running:
        notes.append(
            f"the model was pickled with scikit-learn {plan.model.sklearn_version} and this "
            f"environment has {model.sklearn_running}: the image pins scikit-learn=="
            f"{plan.model.sklearn_version} next to this environment's numpy, scipy and joblib; "
            "if the build cannot resolve them, run dockerize where that scikit-learn is installed"
        )
    saved_with = str(mlflow.get("python_version") or "")
    if saved_with and not f"{saved_with}.".startswith(f"{plan.python_version}."):
        notes.append(
            f"the MLflow model was saved with Python {saved_with} and the image has "
            f"{plan.python_version}; a cloudpickle may need the same Python: set "
            "docker.python_version if it does"
        )
    source = model.origin.get("source", given)
    if fetch:
        notes.append(
            f"the image holds no model: each container fetches {source} into "
            f"{CACHE_DIR} when it starts, pinned by SHA-256 {model.sha256[:12]}…; give it "
            "the credentials with kubernetes.model_credentials_secret or "
            "kubernetes.service_account"
        )
        if parse_source(given).kind != "remote" and "MLFLOW_TRACKING_URI" not in (
            {**settings.kubernetes.env, **settings.docker.env}
        ):
            notes.append(
                "the container resolves an MLflow URI: set MLFLOW_TRACKING_URI in "
                "kubernetes.env, or in the Secret if it carries credentials"
            )
    elif is_uri(given):
        revision = model.origin.get("source_revision")
        notes.append(
            f"baked {source}{f' ({revision})' if revision else ''} into the image as "
            f"{plan.model_filename}, pinned by SHA-256 {model.sha256[:12]}…; the image never "
            "fetches it, so rebuild to ship a newer version"
        )
    return WrittenContext(
        output=output, plan=plan, files=tuple(sorted(written)), notes=tuple(notes)
    )


def _copy_code(paths: tuple[Path, ...], into: Path) -> list[Path]:
    """The code paths' source files under ``into/<name>``, without bytecode caches."""
    if into.exists():  # --force: code from an earlier run must not linger
        shutil.rmtree(into)
    written: list[Path] = []
    for path in paths:
        if path.is_file():
            into.mkdir(parents=True, exist_ok=True)
            written.append(Path(shutil.copy2(path, into / path.name)))
            continue
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
        shutil.copytree(path, into / path.name, ignore=ignore)
        written += sorted(p for p in (into / path.name).rglob("*") if p.is_file())
    return written


def _check_output(output: Path, force: bool) -> None:
    if output.exists() and not output.is_dir():
        raise BuildContextError(f"{output} exists and is not a directory")
    if output.is_dir() and any(output.iterdir()) and not force:
        raise BuildContextError(
            f"{output} is not empty; pass --force to overwrite the files dockerize writes there"
        )
