"""The set of models a server is configured to serve: names, versions, sources.

From ``models:`` (YAML, or several sources on the command line) and ``model_dir``: every model
file (``iris.joblib`` is ``iris``) and MLflow model folder in it, and Triton's layout of a
folder per name holding a folder per version (``iris/2/model.joblib`` is ``iris`` version 2).
Two entries with the same name and version are refused, naming both sources. No I/O beyond
listing the folder: loading is ``model.prepare``'s.

The repository API loads only what this catalog names, re-read when asked (a file dropped into
``model_dir`` later can be loaded): never a path taken from a request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from restpredict.errors import ConfigError, NotFoundError
from restpredict.settings import ModelEntry, Settings, is_uri
from restpredict.sources.mlflow_dir import is_mlflow_dir
from restpredict.sources.resolve import MODEL_SUFFIXES

__all__ = ["Catalogued", "catalog", "catalogued", "version_order", "with_routing"]

_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Catalogued:
    """One configured model: its name, version, source, and the settings that load it."""

    name: str
    version: str | None
    source: str
    default: bool
    settings: Settings  # the server's settings with this model's source and options

    @property
    def label(self) -> str:
        """``name`` or ``name`` version ``v``, for messages."""
        return self.name if self.version is None else f"{self.name} version {self.version}"


def catalog(settings: Settings) -> list[Catalogued]:
    """Every configured model, ``models:`` first, then ``model_dir`` in name order."""
    entries = [*settings.models, *_folder_entries(settings.model_dir)]
    found: dict[tuple[str, str | None], Catalogued] = {}
    for entry in entries:
        item = _catalogued(entry, settings)
        key = (item.name, item.version)
        if key in found:
            raise ConfigError(
                f"two models are named {item.label!r}: {found[key].source} and {item.source}; "
                "give one of them another name (models: name:, or rename the file)"
            )
        found[key] = item
    if settings.default_model is not None and not any(
        name == settings.default_model for name, _ in found
    ):
        names = ", ".join(sorted({name for name, _ in found})) or "none"
        raise ConfigError(
            f"default_model: no model is named {settings.default_model!r}; served: {names}"
        )
    for name, weights in settings.traffic.items():
        unknown = [v for v in weights if (name, v) not in found]
        if unknown:
            versions = ", ".join(str(v) for n, v in found if n == name) or "none"
            raise ConfigError(
                f"traffic: {name} has no version {', '.join(unknown)} (versions: {versions})"
            )
    for name, version in settings.shadow.items():
        if (name, version) not in found:
            versions = ", ".join(str(v) for n, v in found if n == name) or "none"
            raise ConfigError(f"shadow: {name} has no version {version} (versions: {versions})")
    return list(found.values())


def catalogued(settings: Settings, name: str, version: str | None) -> list[Catalogued]:
    """The configured versions of ``name`` (or just ``version``), or NotFoundError."""
    items = [c for c in catalog(settings) if c.name == name]
    if version is not None:
        items = [c for c in items if c.version == version]
    if not items:
        what = f"model {name!r}" + (f" version {version!r}" if version is not None else "")
        known = ", ".join(sorted({c.name for c in catalog(settings)})) or "none"
        raise NotFoundError(
            f"{what} is not in the configured models or the model folder; configured: {known}",
            code="model_not_found",
        )
    return items


def with_routing(current: Settings, fresh: Settings) -> Settings:
    """``current`` with the traffic split and shadows of ``fresh`` (the configuration read
    again by a reload), or ConfigError when they name a version that is not configured."""
    routing = {
        "traffic": fresh.traffic,
        "shadow": fresh.shadow,
        "shadow_tolerance": fresh.shadow_tolerance,
    }
    rerouted = current.model_copy(update=routing)
    catalog(rerouted)  # checks the versions they name
    return rerouted


def version_order(version: str | None) -> tuple[int, int, str]:
    """Sort key: numeric versions numerically, above textual ones; unversioned lowest."""
    if version is None:
        return (0, 0, "")
    if version.isdigit():
        return (2, int(version), version)
    return (1, 0, version)


def _catalogued(entry: ModelEntry, settings: Settings) -> Catalogued:
    name = entry.name or _stem(entry.source)
    overrides: dict[str, object] = {
        "model": entry.source,
        "models": (),
        "model_dir": None,
        "model_name": name,
        "sha256": entry.sha256,
        "code_paths": (*settings.code_paths, *entry.code_paths),
    }
    if entry.backend is not None:
        overrides["backend"] = entry.backend
    if entry.max_batch_size is not None:
        overrides["max_batch_size"] = entry.max_batch_size
    own = settings.model_copy(update=overrides)
    return Catalogued(name, entry.version, entry.source, entry.default, own)


def _stem(source: str) -> str:
    """A route-safe name from a source: the file's stem, the folder's or the URI's last part."""
    tail = source.rstrip("/").rsplit("/", 1)[-1] if is_uri(source) else Path(source).name
    for suffix in (*MODEL_SUFFIXES, ".tar.gz", ".tgz", ".zip"):
        if tail.lower().endswith(suffix):
            tail = tail[: -len(suffix)]
            break
    return _segment(tail)


def _segment(text: str) -> str:
    return _NAME.sub("-", text).strip("-.") or "model"


def _folder_entries(folder: Path | None) -> list[ModelEntry]:
    if folder is None:
        return []
    entries = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if _is_model(path):
            entries.append(ModelEntry.model_validate({"source": str(path)}))
        elif path.is_dir():  # Triton's layout: NAME/VERSION/model file or MLflow folder
            for version in sorted(path.iterdir()):
                model = _model_in(version) if version.is_dir() else None
                if model is not None and not version.name.startswith("."):
                    name, number = _segment(path.name), _segment(version.name)
                    entry = {"source": str(model), "name": name, "version": number}
                    entries.append(ModelEntry.model_validate(entry))
    return entries


def _is_model(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in MODEL_SUFFIXES
    return path.is_dir() and is_mlflow_dir(path)


def _model_in(folder: Path) -> Path | None:
    """A version folder's model: itself when it is an MLflow folder, else its one model file."""
    if is_mlflow_dir(folder):
        return folder
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES]
    return files[0] if len(files) == 1 else None
