"""restpredict: serve a trained scikit-learn model over HTTP, query it, ship it.

The API below is imported on first use (PEP 562), so importing a submodule, such as the CLI
(``restpredict.cli``), does not import scikit-learn, pandas and the app first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from restpredict._version import __version__
from restpredict.errors import RestPredictError

if TYPE_CHECKING:
    from restpredict.app import create_app
    from restpredict.model.loading import LoadedModel, load_model
    from restpredict.model.prepare import load_configured_model
    from restpredict.settings import Settings, load_settings

__all__ = [
    "LoadedModel",
    "RestPredictError",
    "Settings",
    "__version__",
    "create_app",
    "load_configured_model",
    "load_model",
    "load_settings",
]

_LAZY = {
    "create_app": "restpredict.app",
    "LoadedModel": "restpredict.model.loading",
    "load_configured_model": "restpredict.model.prepare",
    "load_model": "restpredict.model.loading",
    "Settings": "restpredict.settings",
    "load_settings": "restpredict.settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'restpredict' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
