"""Where model files come from: local paths, MLflow folders and registries, object stores, HTTP.

``resolve(source)`` turns a source string into a local model file (fetched into a verified
cache when remote) plus what is known about it; the ``model`` layer then pins and loads it.
This package imports nothing above ``settings``; it never unpickles.
"""

from __future__ import annotations

from restpredict.sources.cache import default_cache_dir
from restpredict.sources.mlflow_dir import MlflowModel
from restpredict.sources.resolve import MODEL_SUFFIXES, ResolvedSource, resolve
from restpredict.sources.uri import SourceRef, parse_source, redact

__all__ = [
    "MODEL_SUFFIXES",
    "MlflowModel",
    "ResolvedSource",
    "SourceRef",
    "default_cache_dir",
    "parse_source",
    "redact",
    "resolve",
]
