"""Make the configured model servable: load (or build the demo), verify, warm up, compile.

Start-up (the CLI and each worker) and hot reload all go through ``prepare_model``.
"""

from __future__ import annotations

from dataclasses import replace

from restpredict.errors import ModelLoadError, RestPredictError
from restpredict.model.compiled import compile_model
from restpredict.model.loading import LoadedModel, load_model
from restpredict.settings import Settings

__all__ = ["load_configured_model", "prepare_model"]


def load_configured_model(settings: Settings) -> LoadedModel:
    """The model the settings name, or the built-in demo when they name none."""
    if settings.model is None:
        # Lazy for start-up time: sklearn.datasets and the demo's fit are needed only here.
        from restpredict.model.demo import demo_model

        demo = demo_model()
        return replace(demo, name=settings.model_name) if settings.model_name else demo
    return load_model(
        settings.model,
        sha256=settings.sha256,
        allow_version_mismatch=settings.allow_version_mismatch,
        trusted_types=settings.trusted_types,
        name=settings.model_name,
        code_paths=settings.code_paths,
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
            f"{model.source}: the warm-up prediction failed: {exc.detail}"
        ) from None
    return compile_model(model, settings)
