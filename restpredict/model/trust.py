"""What an operator should hear before a model file is loaded: a pickle runs code."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from restpredict.settings import Settings, is_uri

__all__ = ["pickle_note"]


def pickle_note(settings: Settings) -> str | None:
    """A note when a pickle will be loaded without a SHA-256 pin: loading it runs its code."""
    # Lazy for start-up time: the loader imports scikit-learn, needed only for a pickle.
    from restpredict.model.loading import PICKLE_SUFFIXES

    model = settings.model
    if model is None or settings.sha256 is not None:
        return None
    remote = is_uri(model)
    path = PurePosixPath(urlsplit(model).path) if remote else Path(model)
    if path.suffix.lower() not in PICKLE_SUFFIXES:
        return None
    how = (
        "the sha256 `restpredict info` shows"
        if remote
        else f"the first field of `sha256sum {model}`"
    )
    return (
        f"loading {path.name} runs the code stored in it (a pickle can do anything this user "
        f"can): load only files you trust, and pin this one with --sha256 ({how}) or sha256: "
        "in restpredict.yaml, so that a replaced file is refused"
    )
