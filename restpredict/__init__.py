"""restpredict: serve a trained scikit-learn model over HTTP, query it, ship it."""

from restpredict._version import __version__
from restpredict.app import create_app
from restpredict.errors import RestPredictError
from restpredict.model import LoadedModel, load_configured_model, load_model
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
