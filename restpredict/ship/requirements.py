"""An MLflow model's ``requirements.txt`` merged into the pins of the image.

MLflow records what the model was saved with; this environment's pins are what restpredict is
tested with. The merge adds what only MLflow names, and says so where the two disagree: the
image keeps restpredict's pin (its whole closure was resolved together here), scikit-learn
apart, which is always the model's own.
"""

from __future__ import annotations

import importlib.metadata as metadata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

__all__ = ["MergedPins", "merge_recorded"]

# MLflow lists itself; the image serves without it (fetching from a registry brings the
# mlflow extra's own pin).
_NOT_NEEDED = frozenset({"mlflow", "mlflow-skinny"})


@dataclass(frozen=True)
class MergedPins:
    """The image's pins, the names MLflow added, and one note per disagreement."""

    pins: dict[str, str]
    added: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def merge_recorded(pins: Mapping[str, str], recorded: Iterable[str]) -> MergedPins:
    """``pins`` plus the requirements MLflow recorded (``requirements.txt`` lines).

    A name only MLflow lists is added at MLflow's ``==`` version, or at the version installed
    here for a range; one neither pins nor has installed is left out with a note. A name in
    both with different versions keeps ``pins``'s version and gets a note naming both.
    """
    merged = dict(pins)
    added: list[str] = []
    notes: list[str] = []
    for line in recorded:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            notes.append(f"MLflow's requirements.txt line {line!r} is not a requirement; skipped")
            continue
        name = canonicalize_name(requirement.name)
        if name in _NOT_NEEDED or name == "scikit-learn" or requirement.url:
            continue
        version = _exact(requirement)
        if name in merged:
            if version is not None and version != merged[name]:
                notes.append(
                    f"conflict: the model's MLflow requirements.txt pins {name}=={version}, the "
                    f"image pins {name}=={merged[name]} (the version restpredict runs with "
                    "here); the image keeps "
                    f"{merged[name]}: if the model needs {version}, run dockerize where "
                    f"{name}=={version} is installed"
                )
            continue
        version = version or _installed(name, requirement)
        if version is None:
            notes.append(
                f"the model's MLflow requirements.txt asks for {requirement}, which is neither "
                "pinned there nor installed here: left out of the image; add it to "
                "docker.extra_pip as name==version if the model needs it"
            )
            continue
        merged[name] = version
        added.append(name)
    return MergedPins(dict(sorted(merged.items())), tuple(added), tuple(notes))


def _exact(requirement: Requirement) -> str | None:
    """The version of a ``name==version`` requirement (no wildcard), else None."""
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator in {"==", "==="} and "*" not in specs[0].version:
        return specs[0].version
    return None


def _installed(name: str, requirement: Requirement) -> str | None:
    """The installed version of ``name`` if it satisfies ``requirement``'s range."""
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
    return version if requirement.specifier.contains(version, prereleases=True) else None
