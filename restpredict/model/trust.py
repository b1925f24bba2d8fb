"""What an operator should hear before a model file is loaded: a pickle runs code."""

from __future__ import annotations

from restpredict.settings import Settings

__all__ = ["pickle_note"]


def pickle_note(settings: Settings) -> str | None:
    """A note when a pickle will be loaded without a SHA-256 pin: loading it runs its code."""
    # Lazy for start-up time: the loader imports scikit-learn, needed only for a pickle.
    from restpredict.model.loading import PICKLE_SUFFIXES

    model = settings.model
    if model is None or settings.sha256 is not None:
        return None
    if model.suffix.lower() not in PICKLE_SUFFIXES:
        return None
    return (
        f"loading {model.name} runs the code stored in it (a pickle can do anything this user "
        f"can): load only files you trust, and pin this one with --sha256 (the first field of "
        f"`sha256sum {model}`) or sha256: in restpredict.yaml, so that a replaced file is refused"
    )
