"""The one place configuration is read.

Precedence, lowest first: field defaults < ``restpredict.yaml`` < ``RESTPREDICT_*``
environment variables < CLI flags. The result is a frozen :class:`Settings` that
flows into ``load_model``, ``create_app`` and ``run``; nothing else reads the
environment or YAML. Errors name the key, the source and, for YAML, the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from restpredict.errors import ConfigError

__all__ = ["ENV_PREFIX", "Settings", "load_settings"]

ENV_PREFIX = "RESTPREDICT_"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Settings(BaseModel):
    """Everything ``serve``, ``predict`` and ``info`` need, validated once."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    model: Path | None = Field(
        None, description="Model file (.joblib/.pkl/.pickle/.skops); none serves the iris demo."
    )
    sha256: str | None = Field(
        None, description="Expected SHA-256 of the model file, checked before unpickling."
    )
    allow_version_mismatch: bool = Field(
        False, description="Serve a model pickled with another scikit-learn version anyway."
    )
    trusted_types: tuple[str, ...] = Field(
        (), description="Types a .skops file may load beyond skops' defaults (operator's choice)."
    )
    model_name: str | None = Field(
        None, description="Name used in protocol paths and metadata; default: the file's stem."
    )
    host: str = Field("127.0.0.1", description="Interface to bind; loopback unless asked.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on.")
    workers: int = Field(1, ge=1, le=64, description="Worker processes, each with the model.")
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest accepted request body, in bytes (413)."
    )
    max_rows: int = Field(10_000, ge=1, description="Most rows in one request (422).")
    unknown_columns: Literal["reject", "ignore"] = Field(
        "reject", description="What to do with named columns the model does not know."
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="Server log level."
    )

    # Adaptive micro-batching (batching.py): concurrent requests share one predict call.
    batching: bool = Field(
        True, description="Stack concurrent requests into one predict call (off: one per request)."
    )
    max_batch_size: int = Field(
        32, ge=1, le=4096, description="Most requests in one predict call; 1 turns batching off."
    )
    max_batch_wait_ms: float = Field(
        2.0,
        ge=0,
        le=60_000,
        description="Longest a queued request waits for requests still arriving, in ms "
        "(fractions for microseconds); never waited when nothing else is arriving.",
    )

    # Compiled backend (compiled.py): ONNX Runtime when it verifiably answers like scikit-learn.
    backend: Literal["sklearn", "onnx"] = Field(
        "sklearn", description="onnx: run the model on ONNX Runtime if verified (extra [onnx])."
    )
    onnx_tolerance: float = Field(
        1e-5, gt=0, le=0.1, description="Largest probability/value difference ONNX may have."
    )

    @field_validator("sha256")
    @classmethod
    def _check_sha256(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if not _SHA256.match(value):
            raise ValueError("must be 64 hexadecimal characters")
        return value

    @field_validator("host", "model_name")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(ord(c) < 32 or ord(c) == 127 for c in value)):
            raise ValueError("must be non-empty and contain no control characters")
        return value


def load_settings(
    config: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Merge the layers into one frozen Settings; ``None`` overrides mean "not given"."""
    layers: list[tuple[str, dict[str, Any], yaml.Node | None]] = []
    if config is not None:
        data, node = _read_yaml(config)
        if data.get("model") is not None:
            data["model"] = str((config.parent / str(data["model"])).expanduser())
        layers.append((str(config), data, node))
    layers.append(("environment", _from_environ(environ or {}), None))
    layers.append(("command line", {k: v for k, v in overrides.items() if v is not None}, None))

    merged: dict[str, Any] = {}
    for source, data, node in layers:
        try:
            Settings.model_validate({**merged, **data})
        except ValidationError as exc:
            raise ConfigError(_describe(exc, source, data, node)) from None
        merged.update(data)
    return Settings.model_validate(merged)


def _read_yaml(path: Path) -> tuple[dict[str, Any], yaml.Node | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data, node


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key == "trusted_types":
            data[key] = tuple(part.strip() for part in value.split(",") if part.strip())
        else:
            data[key] = value
    return data


def _describe(
    exc: ValidationError, source: str, data: Mapping[str, Any], node: yaml.Node | None
) -> str:
    """One line naming the source, the key, the line (YAML) and what was wrong."""
    error = next((e for e in exc.errors() if e["loc"] and e["loc"][0] in data), exc.errors()[0])
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc) or "(top level)"
    if source == "environment" and loc:
        key = ENV_PREFIX + loc[0].upper()
    line = _line_of(node, loc)
    where = f"{source}: line {line}" if line else source
    if error["type"] == "extra_forbidden":
        known = ", ".join(sorted(Settings.model_fields))
        return f"{where}: unknown key {key!r} (known keys: {known})"
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {key}: {message} (got {error.get('input')!r})"


def _line_of(node: yaml.Node | None, loc: list[str]) -> int | None:
    """The 1-based line of the key at ``loc`` in a composed YAML document."""
    line = None
    for part in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        for key_node, value_node in node.value:
            if key_node.value == part:
                line = key_node.start_mark.line + 1
                node = value_node
                break
        else:
            break
    return line
