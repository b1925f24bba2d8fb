"""``resolve(source)``: from a source string to a model file on local disk.

Local files and folders are used where they are; remote ones are fetched into the cache
(``cache.py``); archives are unpacked into the cache (``archives.py``); an MLflow model folder
is read for its model file and facts (``mlflow_dir.py``). Nothing is unpickled here: the
caller verifies the model file's SHA-256 pin and loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from restpredict.errors import UnsupportedModelError
from restpredict.sources.archives import extract, is_archive
from restpredict.sources.cache import Cache, default_cache_dir, tree_digest
from restpredict.sources.mlflow_dir import MlflowModel, is_mlflow_dir, read_mlflow_dir
from restpredict.sources.mlflow_registry import fetch_mlflow
from restpredict.sources.remote import fetch_remote
from restpredict.sources.uri import SourceRef, local_path, parse_source

__all__ = ["MODEL_SUFFIXES", "ResolvedSource", "resolve"]

#: Files restpredict loads: pickles (joblib, pickle, cloudpickle) and skops.
MODEL_SUFFIXES = (".joblib", ".pkl", ".pickle", ".skops")


@dataclass(frozen=True)
class ResolvedSource:
    """A source made local: the file to load and where it came from, safe to show."""

    source: str
    local_path: Path
    model_file: Path
    name: str
    revision: str | None = None
    mlflow: MlflowModel | None = None
    remote: bool = False


def resolve(source: str, *, cache_dir: Path | None = None, offline: bool = False) -> ResolvedSource:
    """Fetch (or find in the cache) and unpack what ``source`` names; SourceError if it cannot."""
    ref = parse_source(source)
    cache = Cache(cache_dir or default_cache_dir())
    revision: str | None = None
    if ref.kind == "local":
        path = local_path(ref)  # a missing file is the loader's to report, as before (exit 3)
    elif ref.kind == "remote":
        entry = fetch_remote(ref, cache, offline=offline)
        path, revision = entry.path, entry.stamp
    else:
        entry, revision = fetch_mlflow(ref, cache, offline=offline)
        path = entry.path
    if path.is_file() and is_archive(path):
        path = _unpacked(path, ref, cache)
    return _described(ref, path, revision)


def _unpacked(archive: Path, ref: SourceRef, cache: Cache) -> Path:
    """The archive's contents, unpacked once per archive digest."""
    digest = tree_digest(archive)
    key = f"archive:{digest}"
    hit = cache.lookup(key, digest)
    if hit is not None:
        return hit.path
    entry = cache.store(
        key,
        name="unpacked",
        stamp=digest,
        display=f"{ref.display} (unpacked)",
        fill=lambda target: extract(archive, target),
    )
    return entry.path


def _described(ref: SourceRef, path: Path, revision: str | None) -> ResolvedSource:
    mlflow = None
    if path.is_dir():
        folder = _model_folder(path)
        if is_mlflow_dir(folder):
            mlflow = read_mlflow_dir(folder)
            model_file = mlflow.model_file
        else:
            model_file = _only_model_file(ref, folder)
    else:
        model_file = path
    return ResolvedSource(
        source=ref.display,
        local_path=path,
        model_file=model_file,
        name=ref.name,
        revision=revision,
        mlflow=mlflow,
        remote=ref.kind != "local",
    )


def _model_folder(path: Path) -> Path:
    """The folder itself, or the one folder an archive wrapped everything in."""
    if is_mlflow_dir(path):
        return path
    children = [c for c in path.iterdir() if not c.name.startswith(".")]
    if len(children) == 1 and children[0].is_dir():
        return children[0]
    return path


def _only_model_file(ref: SourceRef, folder: Path) -> Path:
    found = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES]
    if len(found) != 1:
        what = "no model file" if not found else f"{len(found)} model files"
        raise UnsupportedModelError(
            f"{ref.display}: {what} in the folder and no MLmodel file; expected one "
            f"{'/'.join(MODEL_SUFFIXES)} file or an MLflow model folder"
        )
    return found[0]
