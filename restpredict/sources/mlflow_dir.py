"""Read an MLflow model folder (``MLmodel`` + the serialized model) without MLflow.

``MLmodel`` is YAML; its ``sklearn`` flavor names the model file and how it was written
(``pickle``/``cloudpickle``: a pickle, which runs code when loaded; ``skops``: MLflow 3's
default, loaded with the types ``skops_trusted_types`` lists, as MLflow itself would).
The signature's inputs, the recorded scikit-learn version, ``requirements.txt`` and
``python_env.yaml`` are read for the schema, ``/metadata`` and ``dockerize``'s pins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restpredict.errors import ModelLoadError, UnsupportedModelError

__all__ = ["MLMODEL", "MlflowModel", "is_mlflow_dir", "read_mlflow_dir"]

MLMODEL = "MLmodel"
_FORMATS = {"pickle": ".pkl", "cloudpickle": ".pkl", "skops": ".skops"}


@dataclass(frozen=True)
class MlflowModel:
    """What an MLflow model folder says about its scikit-learn model."""

    directory: Path
    model_file: Path
    serialization_format: str
    trusted_types: tuple[str, ...]
    sklearn_version: str | None
    input_names: tuple[str, ...] | None
    input_types: tuple[str, ...] | None
    requirements: tuple[str, ...]
    python_version: str | None
    mlflow_version: str | None
    code_dir: Path | None = None

    def metadata(self) -> dict[str, Any]:
        """The part ``/metadata`` shows under ``mlflow``."""
        return {
            "serialization_format": self.serialization_format,
            "skops_trusted_types": list(self.trusted_types),
            "sklearn_version": self.sklearn_version,
            "signature_inputs": (
                [{"name": n, "type": t} for n, t in zip(self.input_names, self.input_types or ())]
                if self.input_names
                else None
            ),
            "mlflow_version": self.mlflow_version,
            "python_version": self.python_version,
            "requirements": list(self.requirements),
        }


def is_mlflow_dir(path: Path) -> bool:
    """True for a folder holding an ``MLmodel`` file."""
    return path.is_dir() and (path / MLMODEL).is_file()


def read_mlflow_dir(directory: Path) -> MlflowModel:
    """Parse ``MLmodel``; UnsupportedModelError without a usable ``sklearn`` flavor."""
    where = directory / MLMODEL
    document = _read_yaml(where)
    flavors = document.get("flavors")
    if not isinstance(flavors, dict) or not isinstance(flavors.get("sklearn"), dict):
        names = ", ".join(sorted(flavors)) if isinstance(flavors, dict) else "none"
        raise UnsupportedModelError(
            f"{where}: no sklearn flavor (flavors: {names}); restpredict serves scikit-learn "
            "models saved with mlflow.sklearn"
        )
    flavor: dict[str, Any] = flavors["sklearn"]
    fmt = str(flavor.get("serialization_format") or "cloudpickle")
    if fmt not in _FORMATS:
        raise UnsupportedModelError(f"{where}: unknown serialization_format {fmt!r}")
    model_file = _inside(directory, flavor.get("pickled_model"), where)
    if model_file.suffix.lower() != _FORMATS[fmt] and fmt != "pickle":
        raise UnsupportedModelError(
            f"{where}: pickled_model {model_file.name!r} does not end in {_FORMATS[fmt]} "
            f"as {fmt} files do"
        )
    input_names, input_types = _signature_inputs(document.get("signature"), where)
    trusted = flavor.get("skops_trusted_types") or ()
    return MlflowModel(
        directory=directory,
        model_file=model_file,
        serialization_format=fmt,
        trusted_types=tuple(str(t) for t in trusted),
        sklearn_version=_text(flavor.get("sklearn_version")),
        input_names=input_names,
        input_types=input_types,
        requirements=_requirements(directory / "requirements.txt"),
        python_version=_python_version(directory / "python_env.yaml"),
        mlflow_version=_text(document.get("mlflow_version")),
        code_dir=_code_dir(directory, flavor.get("code"), where),
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelLoadError(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None
    if not isinstance(document, dict):
        raise ModelLoadError(f"{path}: expected a YAML mapping")
    return document


def _inside(directory: Path, name: Any, where: Path) -> Path:
    """The model file ``pickled_model`` names; never a path leaving the folder."""
    if not isinstance(name, str) or not name:
        raise UnsupportedModelError(f"{where}: the sklearn flavor names no pickled_model")
    path = (directory / name).resolve()
    if not path.is_relative_to(directory.resolve()):
        raise UnsupportedModelError(f"{where}: pickled_model {name!r} is outside the folder")
    if not path.is_file():
        raise ModelLoadError(f"{where}: pickled_model {name!r} is missing")
    return path


def _code_dir(directory: Path, name: Any, where: Path) -> Path | None:
    """The folder of user modules MLflow saved with the model (``code_paths=``), if any."""
    if not name:
        return None
    path = (directory / str(name)).resolve()
    if not path.is_relative_to(directory.resolve()) or not path.is_dir():
        raise UnsupportedModelError(f"{where}: code {name!r} is not a folder inside the model")
    return path


def _signature_inputs(
    signature: Any, where: Path
) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    if not isinstance(signature, dict) or not signature.get("inputs"):
        return None, None
    try:
        columns = json.loads(signature["inputs"])
    except (TypeError, ValueError):
        raise ModelLoadError(f"{where}: signature inputs are not JSON") from None
    if not isinstance(columns, list) or not all(
        isinstance(c, dict) and c.get("name") for c in columns
    ):
        return None, None  # a tensor signature: no column names to learn
    names = tuple(str(c["name"]) for c in columns)
    types = tuple(str(c.get("type", "")) for c in columns)
    return names, types


def _requirements(path: Path) -> tuple[str, ...]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ()
    return tuple(s for line in lines if (s := line.split("#", 1)[0].strip()))


def _python_version(path: Path) -> str | None:
    if not path.is_file():
        return None
    return _text(_read_yaml(path).get("python"))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
