"""``restpredict init``: a commented starter restpredict.yaml, filled in from a model file.

The ``docker:`` and ``kubernetes:`` keys, their descriptions and defaults come from the
settings models themselves, so the starter file cannot drift from what is accepted.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from restpredict._version import __version__
from restpredict.errors import BuildContextError, ConfigError
from restpredict.model.loading import LoadedModel
from restpredict.model.prepare import load_source
from restpredict.settings import Settings, is_uri
from restpredict.ship.deploy_settings import DeploySettings
from restpredict.ship.dockerize import BuildPlan, ModelFacts, plan_build
from restpredict.ship.templates import render_template

__all__ = ["render_starter_config", "write_starter_config"]

# Filled in from the model: written as active keys, not commented defaults.
_FILLED = {("docker", "image"), ("kubernetes", "name")}


def render_starter_config(
    model: LoadedModel,
    model_path: str,
    *,
    trusted_types: tuple[str, ...] = (),
    code_paths: tuple[str, ...] = (),
) -> str:
    """The starter file's text; ``model_path`` and ``code_paths`` relative to the config file."""
    facts = ModelFacts.of(model, Path(model.source))
    defaults = DeploySettings.model_validate({})
    plan = plan_build(defaults, facts)
    return render_template(
        "restpredict.yaml.j2",
        restpredict_version=__version__,
        model_file=facts.filename,
        model_path=model_path,
        sha256=model.sha256,
        summary=_summary(model),
        sklearn_version=facts.sklearn_version,
        trusted_types=list(trusted_types),
        code_paths=list(code_paths),
        sections=[
            _section("docker", defaults.docker, plan),
            _section("kubernetes", defaults.kubernetes, plan),
        ],
    )


def _summary(model: LoadedModel) -> list[str]:
    schema = model.schema
    lines = [f"Model: {schema.estimator} ({schema.task}), {schema.n_features} features"]
    if schema.feature_names:
        lines.append("Columns: " + ", ".join(schema.feature_names))
    if schema.classes is not None:
        lines.append("Classes: " + ", ".join(str(c) for c in schema.classes))
    return [line for text in lines for line in textwrap.wrap(text, 96)]


def _section(name: str, defaults: BaseModel, plan: BuildPlan) -> dict[str, Any]:
    fields = []
    for key, info in type(defaults).model_fields.items():
        value = getattr(defaults, key)
        if value is None:  # a default derived from the model: show what it resolves to
            value = _derived(plan, name, key)
        fields.append(
            {
                "key": key,
                "value": json.dumps(value if not isinstance(value, tuple) else list(value)),
                "comment": textwrap.wrap(info.description or "", 94),
                "active": (name, key) in _FILLED,
            }
        )
    return {"name": name, "fields": fields}


def _derived(plan: BuildPlan, section: str, key: str) -> Any:
    resolved = {
        ("docker", "image"): plan.image,
        ("docker", "tag"): plan.tag,
        ("docker", "python_version"): plan.python_version,
        ("docker", "base_image"): plan.base_image,
        ("docker", "model_filename"): plan.model_filename,
        ("kubernetes", "name"): plan.name,
    }
    return resolved.get((section, key))


def write_starter_config(settings: Settings, output: Path, *, force: bool = False) -> Path:
    """Resolve, load and inspect ``settings.model``, then write the starter config to ``output``.

    A local source and the code paths are written relative to the config file; a remote
    source as given (it is fetched again where the config is used).
    """
    if settings.model is None:
        raise ConfigError("init needs a model source: give MODEL")
    code_paths = settings.code_paths
    if output.exists() and not force:
        raise BuildContextError(f"{output} exists; pass --force to overwrite it")
    for path in code_paths:
        if not (path.is_dir() or (path.is_file() and path.suffix == ".py")):
            raise BuildContextError(f"--code-path {path} is not a .py file or a directory")
    # Only described, never served here: another scikit-learn is fine (the image pins its own).
    model = load_source(settings.model, settings, allow_version_mismatch=True)
    here = output.resolve().parent
    source = settings.model
    if not is_uri(source):
        source = Path(os.path.relpath(Path(source).resolve(), here)).as_posix()
    text = render_starter_config(
        model,
        source,
        trusted_types=settings.trusted_types,
        code_paths=tuple(Path(os.path.relpath(p.resolve(), here)).as_posix() for p in code_paths),
    )
    output.write_text(text, encoding="utf-8")
    return output
