"""Make the configured model servable: load (or build the demo), verify, warm up, compile.

Start-up (the CLI and each worker) and hot reload all go through ``prepare_model``; a server
of several models prepares each of its catalog (``prepare_models``) the same way.
"""

from __future__ import annotations

from dataclasses import replace

import sklearn

from restpredict.errors import (
    IntegrityError,
    ModelLoadError,
    RestPredictError,
    VersionMismatchError,
)
from restpredict.model.backend import select_backend
from restpredict.model.catalog import Catalogued, catalog
from restpredict.model.loading import LoadedModel, load_model
from restpredict.model.schema import with_signature
from restpredict.settings import Settings
from restpredict.sources import ResolvedSource, resolve

__all__ = [
    "Prepared",
    "check_recorded_version",
    "load_configured_model",
    "load_resolved",
    "load_source",
    "prepare_model",
    "prepare_models",
    "prepare_version",
]

#: A configured model and the prepared model serving it.
Prepared = tuple[Catalogued, LoadedModel]


def load_configured_model(settings: Settings) -> LoadedModel:
    """The model the settings name, or the built-in demo when they name none."""
    if settings.model is None:
        # Lazy for start-up time: sklearn.datasets and the demo's fit are needed only here.
        from restpredict.model.demo import demo_model

        demo = demo_model()
        if settings.sha256 is not None and settings.sha256 != demo.sha256:
            raise IntegrityError(
                f"the built-in demo's SHA-256 is {demo.sha256}, not the pinned {settings.sha256}"
            )
        return replace(demo, name=settings.model_name) if settings.model_name else demo
    return load_source(
        settings.model,
        settings,
        allow_version_mismatch=settings.allow_version_mismatch,
    )


def load_source(source: str, settings: Settings, *, allow_version_mismatch: bool) -> LoadedModel:
    """Resolve ``source`` (fetching it into the cache if remote), then pin-check and load it.

    The SHA-256 pin is checked by ``load_model`` on the model file's own bytes, wherever they
    came from; an MLflow folder adds the skops types its MLmodel trusts, its ``code`` folder
    (importable, as MLflow makes it) and the scikit-learn version it recorded, checked before
    anything is unpickled.
    """
    resolved = resolve(source, cache_dir=settings.cache_dir, offline=settings.offline)
    return load_resolved(resolved, settings, allow_version_mismatch=allow_version_mismatch)


def load_resolved(
    resolved: ResolvedSource, settings: Settings, *, allow_version_mismatch: bool
) -> LoadedModel:
    """``load_source`` for a source already resolved (Spark's driver ships its file too)."""
    trusted = settings.trusted_types
    code_paths = settings.code_paths
    origin: dict[str, object] = {"source": resolved.source}
    if resolved.revision is not None:
        origin["source_revision"] = resolved.revision
    if resolved.remote or resolved.local_path != resolved.model_file:
        # fetched, or found in a folder or archive (model.skops): named for the source instead
        origin["file_name"] = f"{resolved.name}{resolved.model_file.suffix}"
    mlflow = resolved.mlflow
    if mlflow is not None:
        trusted = (*trusted, *(t for t in mlflow.trusted_types if t not in trusted))
        origin["mlflow"] = mlflow.metadata()
        if mlflow.code_dir is not None:  # MLflow puts the folder's code/ on sys.path too
            code_paths = (*code_paths, mlflow.code_dir)
            origin["code_paths"] = (mlflow.code_dir,)
        if not allow_version_mismatch:
            check_recorded_version(resolved.source, mlflow.sklearn_version)
    try:
        model = load_model(
            resolved.model_file,
            sha256=settings.sha256,
            allow_version_mismatch=allow_version_mismatch,
            trusted_types=trusted,
            name=settings.model_name or resolved.name,
            code_paths=code_paths,
        )
    except IntegrityError as exc:
        if not resolved.remote:
            raise
        # A cache path alone does not say which source failed its pin.
        raise IntegrityError(f"{resolved.source}: {exc.detail}") from None
    if mlflow is not None and mlflow.input_names:  # names for a model fitted on arrays
        schema = with_signature(model.schema, mlflow.input_names, mlflow.input_types or ())
        model = replace(model, schema=schema)
    return replace(model, origin=origin)


def check_recorded_version(source: str, recorded: str | None) -> None:
    """Refuse a model whose MLmodel records another scikit-learn than the one running here."""
    running = str(sklearn.__version__)
    if recorded not in (None, running):
        raise VersionMismatchError(
            f"{source}: saved with scikit-learn {recorded} (its MLmodel says) but "
            f"{running} is installed; install scikit-learn=={recorded}, or pass "
            "--allow-version-mismatch to serve it anyway"
        )


def prepare_model(settings: Settings) -> LoadedModel:
    """Load, verify and warm up the configured model, on the configured backend.

    Everything that makes a model servable, in one place: start-up (CLI and each worker)
    and hot reload all go through here.
    """
    model = load_configured_model(settings)
    try:
        model.warm_up()
    except RestPredictError as exc:
        raise ModelLoadError(
            f"{model.origin.get('source', model.source)}: the warm-up prediction failed: "
            f"{exc.detail}"
        ) from None
    return select_backend(model, settings)


def prepare_models(settings: Settings) -> list[Prepared]:
    """Every model of the configured catalog, prepared like one (``models``/``model_dir``).

    All are loaded before the server listens (and, with several workers, before they fork),
    so a server that cannot serve one of them does not start.
    """
    return [(item, prepare_version(item)) for item in catalog(settings)]


def prepare_version(item: Catalogued) -> LoadedModel:
    """One catalogued model, prepared with its own settings and carrying its version."""
    return replace(prepare_model(item.settings), version=item.version)
