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
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from restpredict.errors import ConfigError

if TYPE_CHECKING:  # imported when a config file is read: most servers are started without one
    import yaml

__all__ = [
    "DEPLOY_SECTIONS",
    "ENV_PREFIX",
    "ModelEntry",
    "Settings",
    "is_uri",
    "load_settings",
    "validate_layers",
]

ENV_PREFIX = "RESTPREDICT_"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # two letters at least: C:\\ is a path
_LIST_KEYS = ("trusted_types", "open_paths", "limit_exempt_paths", "cors_origins", "code_paths")
_SECRET_KEYS = ("api_key",)
_PROBE_PATHS = ("/health/live", "/health/ready", "/v2/health/live", "/v2/health/ready")
#: Sections of restpredict.yaml that only ``dockerize`` and ``init`` read, through
#: ``deploy_settings.DeploySettings``. ``Settings`` leaves them alone: ``serve`` neither checks
#: them nor imports their models (~35 ms of its launch).
DEPLOY_SECTIONS = ("docker", "kubernetes")


class ModelEntry(BaseModel):
    """One model of several served by one server (``models:``), with its own options."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(description="Model source, as for ``model``.")
    name: str | None = Field(
        None, description="Name in every route (/models/NAME/predict); default: the file's stem."
    )
    version: str | None = Field(
        None, description="Version of NAME; several entries may share a name with other versions."
    )
    default: bool = Field(
        False, description="The version an unversioned request gets (default: the highest)."
    )
    sha256: str | None = Field(None, description="Expected SHA-256 of this model's file.")
    code_paths: tuple[Path, ...] = Field((), description="Modules this model's pickle imports.")
    backend: Literal["auto", "sklearn", "onnx"] | None = Field(
        None, description="This model's backend; default: the server's ``backend``."
    )
    max_batch_size: int | None = Field(
        None, ge=1, le=4096, description="Most requests in one of this model's predict calls."
    )

    @field_validator("source", mode="before")
    @classmethod
    def _source_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, Path) else value

    @field_validator("name", "version")
    @classmethod
    def _path_segment(cls, value: str | None) -> str | None:
        """Names and versions are URL path segments: no slashes, colons or control characters."""
        if value is not None and not _SEGMENT.match(value):
            raise ValueError(
                f"{value!r}: use letters, digits, '.', '_' and '-' (it is a URL path segment)"
            )
        return value

    @field_validator("sha256")
    @classmethod
    def _check_sha256(cls, value: str | None) -> str | None:
        return _valid_sha256(value)


class Settings(BaseModel):
    """Everything ``serve``, ``predict`` and ``info`` need, validated once."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    model: str | None = Field(
        None,
        description="Model source: a .joblib/.pkl/.pickle/.skops file, an MLflow model folder, "
        "an archive, models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN/PATH, s3://, gs://, "
        "az://, http(s)://; none serves the iris demo.",
    )
    cache_dir: Path | None = Field(
        None, description="Where remote sources are cached; default: the user cache folder."
    )
    offline: bool = Field(
        False, description="Use only what the cache holds for a remote source; fetch nothing."
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
    code_paths: tuple[Path, ...] = Field(
        (),
        description="Your own modules the model's pickle imports (.py files or directories), "
        "importable before it is unpickled; they run with the server's rights.",
    )
    # Several models in one server (model/catalog.py, docs/models.md).
    models: tuple[ModelEntry, ...] = Field(
        (), description="Several models to serve, each with a name, source and options."
    )
    model_dir: Path | None = Field(
        None,
        description="Serve every model file and MLflow model folder in this folder; "
        "turns the repository API on (load/unload read only from here or models:).",
    )
    default_model: str | None = Field(
        None, description="With several models, the one /predict, /metadata and /invocations use."
    )
    traffic: dict[str, dict[str, float]] = Field(
        {},
        description="Canary: per model name, the share of its unversioned requests each version "
        "gets ({flowers: {'1': 90, '2': 10}}); sticky per X-Routing-Key header.",
    )
    shadow: dict[str, str] = Field(
        {},
        description="Shadow traffic: per model name, a version that also predicts its answered "
        "requests, off the critical path, for restpredict_shadow_comparisons_total.",
    )
    shadow_tolerance: float = Field(
        1e-6, ge=0, description="Largest difference of numbers that still agree (regression)."
    )
    repository_api: bool = Field(
        False,
        description="The V2 model repository API (index, load, unload; API key when one is set).",
    )
    host: str = Field("127.0.0.1", description="Interface to bind; loopback unless asked.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on.")
    tls_cert: Path | None = Field(
        None, description="PEM certificate (chain) to serve HTTPS with; needs tls_key."
    )
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert.")
    tls_client_ca: Path | None = Field(
        None,
        description="PEM CA bundle: require client certificates it signed (mutual TLS).",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Worker processes, forked from the process that loaded the model: they share "
        "its memory and serve what it verified (docs: Several workers).",
    )
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

    # --- Hardening: access, limits, timeouts and lifecycle (docs/security.md) ---
    api_key: SecretStr | None = Field(
        None, description="Bearer token required on every non-open path; never a CLI flag."
    )
    api_key_file: Path | None = Field(
        None, description="File holding the bearer token, read once when settings are built."
    )
    open_paths: tuple[str, ...] = Field(
        _PROBE_PATHS, description="Exact paths served without a token (probes, metrics)."
    )
    cors_origins: tuple[str, ...] = Field(
        (), description="Browser origins allowed by CORS; empty means CORS is off."
    )
    max_concurrency: int = Field(
        1024,
        ge=1,
        le=100_000,
        description="Hard cap on requests in flight per worker (503); overload is normally "
        "detected by queueing delay (queue_delay_target_ms).",
    )
    # CoDel's own defaults (5 ms over 100 ms), kept because the overload benchmark measured
    # them best: docs/performance.md, "Overload".
    queue_delay_target_ms: float = Field(
        5.0,
        gt=0,
        le=60_000,
        description="Most requests waiting longer than this for the model (from arrival; never "
        "less than two model calls), over a whole queue_delay_interval_ms, mean overload: new "
        "predictions that would wait longer get 503.",
    )
    queue_delay_interval_ms: float = Field(
        100.0, gt=0, le=600_000, description="How long waits must stay over the target."
    )
    retry_after: int = Field(1, ge=0, le=3600, description="Retry-After seconds sent with a 503.")
    limit_exempt_paths: tuple[str, ...] = Field(
        (*_PROBE_PATHS, "/metrics"),
        description="Exact paths that bypass the concurrency limit and prediction timeout.",
    )
    header_timeout: float = Field(
        10.0, gt=0, le=3600, description="Seconds to send complete request headers (408, close)."
    )
    max_header_bytes: int = Field(
        64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Largest request line and headers, in bytes, checked as they arrive (431).",
    )
    max_header_count: int = Field(
        100, ge=8, le=10_000, description="Most header fields in one request (431)."
    )
    http_parser: Literal["auto", "httptools", "h11"] = Field(
        "auto",
        description="HTTP/1.1 parser: httptools (uvicorn[standard], the faster) when installed, "
        "or h11; both enforce the same header limits and framing rules.",
    )
    send_timeout: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Seconds a client may read nothing of an answer before its connection is "
        "closed (nginx's send_timeout).",
    )
    write_buffer_budget: int = Field(
        256 * 1024 * 1024,
        ge=1024 * 1024,
        description="Bytes of answers written but not yet read, over all clients; beyond it the "
        "connections that stopped reading first are closed.",
    )
    body_timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds to send the whole body after the headers (408)."
    )
    keep_alive_timeout: int = Field(
        5, ge=1, le=3600, description="Seconds an idle keep-alive connection is kept open."
    )
    prediction_timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds from a complete body to the response (504)."
    )
    reload_timeout: float = Field(
        600.0,
        gt=0,
        le=3600,
        description="Seconds from a complete body to the response of POST /admin/reload and "
        "a repository load or unload (504): loading a large model can take longer than a "
        "prediction should.",
    )
    allow_schema_change: bool = Field(
        False,
        description="Let a reload swap in a model whose inputs (features, names, kinds) or "
        "outputs (task, classes) differ from the serving one's; refused (409) otherwise.",
    )
    drain_seconds: float = Field(
        0.0, ge=0, le=3600, description="After SIGTERM, keep serving this long with readiness 503."
    )
    shutdown_timeout: int = Field(
        30, ge=1, le=3600, description="After the drain, seconds in-flight requests may take."
    )

    @model_validator(mode="before")
    @classmethod
    def _leave_deploy_sections(cls, data: Any) -> Any:
        """The ``docker:`` and ``kubernetes:`` sections are for a subclass that declares them."""
        fields = cls.model_fields
        if isinstance(data, dict) and any(k in data and k not in fields for k in DEPLOY_SECTIONS):
            return {k: v for k, v in data.items() if k in fields or k not in DEPLOY_SECTIONS}
        return data

    @model_validator(mode="before")
    @classmethod
    def _read_api_key_file(cls, data: Any) -> Any:
        """The key file is read here, once, so the token lives only in a SecretStr."""
        if not isinstance(data, dict) or data.get("api_key_file") is None:
            return data
        if data.get("api_key") is not None:
            raise ValueError("give api_key_file or api_key (RESTPREDICT_API_KEY), not both")
        path = Path(data["api_key_file"])
        try:
            key = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"api_key_file: cannot read {path} ({exc})") from None
        return {**data, "api_key": key}

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        """A certificate needs its key (and a client CA needs both); the files must exist."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give tls_cert and tls_key together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca needs tls_cert and tls_key (mutual TLS is TLS)")
        for path in (self.tls_cert, self.tls_key, self.tls_client_ca):
            if path is not None and not path.is_file():
                raise ValueError(f"no such file: {path}")
        return self

    @field_validator("api_key")
    @classmethod
    def _usable_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            key = value.get_secret_value()
            if not key or any(c.isspace() or not c.isprintable() for c in key):
                raise ValueError("must be non-empty printable text without whitespace")
        return value

    @field_validator("code_paths")
    @classmethod
    def _existing_code(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        for path in value:
            if not (path.is_dir() or (path.is_file() and path.suffix == ".py")):
                raise ValueError(f"{path} is not a .py file or a directory")
        return value

    @field_validator("open_paths", "limit_exempt_paths")
    @classmethod
    def _absolute_paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not path.startswith("/") for path in value):
            raise ValueError("every path must start with /")
        return value

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
        "(fractions for microseconds); never waited when nothing else is arriving. A model "
        "whose calls take longer waits up to one call (at most 10x this); 0 never waits.",
    )

    # Backend (backend.py): what computes the answers; every choice answers like scikit-learn.
    backend: Literal["auto", "sklearn", "onnx"] = Field(
        "auto",
        description="auto: the model's exact fast path where one exists and verifies, else "
        "scikit-learn; sklearn: always scikit-learn; onnx: ONNX Runtime if verified (extra "
        "[onnx]).",
    )
    onnx_tolerance: float = Field(
        1e-5, gt=0, le=0.1, description="Largest probability/value difference ONNX may have."
    )

    @field_validator("sha256")
    @classmethod
    def _check_sha256(cls, value: str | None) -> str | None:
        return _valid_sha256(value)

    @model_validator(mode="after")
    def _one_kind_of_source(self) -> Settings:
        """``model`` serves one model; ``models``/``model_dir`` several: not both at once."""
        if self.model is not None and (self.models or self.model_dir is not None):
            raise ValueError("give model (one model) or models/model_dir (several), not both")
        if self.model_dir is not None and not self.model_dir.is_dir():
            raise ValueError(f"model_dir: no such folder: {self.model_dir}")
        return self

    @field_validator("traffic")
    @classmethod
    def _weights(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for name, weights in value.items():
            if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
                raise ValueError(f"{name}: weights must be >= 0 and not all 0")
        return value

    @property
    def several_models(self) -> bool:
        """True when ``models`` or ``model_dir`` configure the set served (even of one)."""
        return bool(self.models) or self.model_dir is not None

    @field_validator("model", mode="before")
    @classmethod
    def _source_text(cls, value: Any) -> Any:
        """A path object (Python API callers) is a local source like any other."""
        return str(value) if isinstance(value, Path) else value

    @field_validator("host", "model_name", "model")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(ord(c) < 32 or ord(c) == 127 for c in value)):
            raise ValueError("must be non-empty and contain no control characters")
        return value

    # Observability: log format and the access log (logs.py, observability.py).
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="Log lines as JSON or text; auto: text on a terminal, else JSON."
    )
    access_log: bool = Field(
        True, description="One log line per request (never bodies, queries or other headers)."
    )


def _valid_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    if not _SHA256.match(value):
        raise ValueError("must be 64 hexadecimal characters")
    return value


def load_settings(
    config: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    require_model: bool = False,
    **overrides: Any,
) -> Settings:
    """Merge the layers into one frozen Settings; ``None`` overrides mean "not given".

    ``require_model``: the merged ``model`` must name an existing file; if not, the error
    names the layer and line that set it. ``deploy_settings.load_deploy_settings`` is the same
    with the ``docker:`` and ``kubernetes:`` sections.
    """
    return validate_layers(
        Settings, config, environ=environ, require_model=require_model, **overrides
    )


S = TypeVar("S", bound=Settings)


def validate_layers(
    cls: type[S],
    config: Path | None,
    *,
    environ: Mapping[str, str] | None,
    require_model: bool,
    **overrides: Any,
) -> S:
    """``load_settings`` into ``cls``, Settings or a subclass that reads more of the file."""
    layers: list[tuple[str, dict[str, Any], yaml.Node | None]] = []
    if config is not None:
        data, node = _read_yaml(config)
        keys = ("model", "model_dir", "api_key_file", "cache_dir", "tls_cert", "tls_key")
        for key in (*keys, "tls_client_ca"):
            value = data.get(key)  # relative to the config file
            if value is not None and not (key == "model" and is_uri(str(value))):
                data[key] = str((config.parent / str(value)).expanduser())
        if isinstance(data.get("code_paths"), list):
            data["code_paths"] = [
                str((config.parent / str(p)).expanduser()) for p in data["code_paths"]
            ]
        if isinstance(data.get("models"), list):
            data["models"] = [_relative_entry(config.parent, e) for e in data["models"]]
        layers.append((str(config), data, node))
    layers.append(("environment", _from_environ(environ or {}), None))
    layers.append(("command line", {k: v for k, v in overrides.items() if v is not None}, None))

    merged: dict[str, Any] = {}
    for source, data, node in layers:
        try:
            cls.model_validate(_merge(merged, data))
        except ValidationError as exc:
            raise ConfigError(_describe(exc, cls, source, data, node)) from None
        merged = _merge(merged, data)
    settings = cls.model_validate(merged)
    if require_model:
        _require_model_file(settings, layers)
    return settings


def _relative_entry(folder: Path, entry: Any) -> Any:
    """A ``models:`` entry's local source and code paths, relative to the config file."""
    if not isinstance(entry, dict):
        return entry
    entry = dict(entry)
    source = entry.get("source")
    if isinstance(source, str) and not is_uri(source):
        entry["source"] = str((folder / source).expanduser())
    if isinstance(entry.get("code_paths"), list):
        entry["code_paths"] = [str((folder / str(p)).expanduser()) for p in entry["code_paths"]]
    return entry


def _merge(base: dict[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """``layer`` over ``base``; sections (``docker:``) merge key by key, not wholesale."""
    merged = dict(base)
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def is_uri(source: str) -> bool:
    """True for a source with a scheme (``s3://``, ``models:/``), not a local path."""
    return _URI.match(source) is not None


def _require_model_file(
    settings: Settings, layers: list[tuple[str, dict[str, Any], yaml.Node | None]]
) -> None:
    """A local source must exist now; a remote one is checked when it is fetched."""
    if settings.model is not None and (
        is_uri(settings.model) or Path(settings.model).expanduser().exists()
    ):
        return
    source, node = next(
        ((s, n) for s, data, n in reversed(layers) if data.get("model") is not None),
        ("command line", None),
    )
    line = _line_of(node, ["model"])
    where = f"{source}: line {line}" if line else source
    if settings.model is None:
        raise ConfigError(f"{where}: model: a model file is required (MODEL or model: in config)")
    raise ConfigError(f"{where}: model: no such file: {settings.model}")


def _read_yaml(path: Path) -> tuple[dict[str, Any], yaml.Node | None]:
    import yaml

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
        if key in _LIST_KEYS:
            data[key] = tuple(part.strip() for part in value.split(",") if part.strip())
        else:
            data[key] = value
    return data


def _describe(
    exc: ValidationError,
    cls: type[Settings],
    source: str,
    data: Mapping[str, Any],
    node: yaml.Node | None,
) -> str:
    """One line naming the source, the key, the line (YAML) and what was wrong."""
    error = next((e for e in exc.errors() if e["loc"] and e["loc"][0] in data), exc.errors()[0])
    loc = [str(part) for part in error["loc"] if part != "[key]"]
    key = ".".join(loc) or "(top level)"
    if source == "environment" and loc:
        key = ENV_PREFIX + loc[0].upper()
    line = _line_of(node, loc)
    where = f"{source}: line {line}" if line else source
    if error["type"] == "extra_forbidden":
        known_keys = set(_section_of(cls, loc[:-1]).model_fields)
        if len(loc) == 1:  # the top level: the sections dockerize reads are known keys too
            known_keys.update(DEPLOY_SECTIONS)
        known = ", ".join(sorted(known_keys))
        return f"{where}: unknown key {key!r} (known keys: {known})"
    message = error["msg"].removeprefix("Value error, ")
    if not loc:  # a whole-object check: its message names the keys; the input may hold secrets
        return f"{where}: {message}"
    if loc[0] in _SECRET_KEYS:
        return f"{where}: {key}: {message}"  # never echo a secret
    value = error.get("input")
    got = "" if isinstance(value, Mapping) else f" (got {value!r})"  # a whole section: too long
    return f"{where}: {key}: {message}{got}"


def _section_of(cls: type[Settings], loc: list[str]) -> type[BaseModel]:
    """The settings model a key path points into (``docker`` -> DockerSettings)."""
    section: type[BaseModel] = cls
    for part in loc:
        field = section.model_fields.get(part)
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        section = annotation
    return section


def _line_of(node: yaml.Node | None, loc: list[str]) -> int | None:
    """The 1-based line of the key at ``loc`` in a composed YAML document."""
    if node is None:
        return None
    import yaml

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
