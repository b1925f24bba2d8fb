"""Every option the commands share, declared once, in the help panel it is listed under.

A setting's option names the field it sets (``restpredict.settings.Settings``, or a
``docker:``/``kubernetes:`` field of ``DeploySettings``); its help shows that field's default
(``help.SettingsCommand``). The commands take these through ``flags.with_flags``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from restpredict.cli.flags import option, setting

__all__ = [
    "BACKEND",
    "BATCH_FLAGS",
    "CACHE_FLAGS",
    "CLIENT_FLAGS",
    "CODE_PATHS",
    "DOCKER_FLAGS",
    "IO_FLAGS",
    "KUBERNETES_FLAGS",
    "MODEL_PANEL",
    "SERVE_FLAGS",
    "SHA256",
    "SOURCE_FLAGS",
    "TIMEOUT",
    "TRUSTED_TYPES",
    "UNKNOWN_COLUMNS",
    "CheckOpt",
    "ConfigOpt",
    "ModelArg",
    "UrlOpt",
]

MODEL_PANEL = "Model"
SERVER_PANEL = "Server"
LIMITS_PANEL = "Limits and timeouts"
SECURITY_PANEL = "Security"
BATCHING_PANEL = "Batching"
LOGGING_PANEL = "Logging"
CLIENT_PANEL = "Remote server"
DEPLOY_PANEL = "Deploy"
IO_PANEL = "Input and output"
BATCH_PANEL = "Batch scoring"

ModelArg = Annotated[
    str | None,
    typer.Argument(
        help="Model source: a .joblib/.pkl/.pickle/.skops file, an MLflow model folder, a "
        ".tar.gz/.zip, models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN_ID/PATH, s3://, "
        "gs://, az://, https://. Omit to use the demo.",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="RESTPREDICT_CONFIG",
        help="restpredict.yaml to read settings from.",
    ),
]
UrlOpt = Annotated[
    str | None,
    typer.Option("--url", "-u", help="Ask a running server instead.", rich_help_panel=CLIENT_PANEL),
]
CheckOpt = Annotated[
    bool,
    typer.Option(
        "--check",
        help="Load, verify and warm up the model exactly as serving would, then exit "
        "without listening (dockerize's build runs this).",
        rich_help_panel=MODEL_PANEL,
    ),
]

# --- Model: where it comes from and what may load it ---
SHA256 = setting(
    "sha256", str, text="Refuse the model unless its SHA-256 matches.", panel=MODEL_PANEL
)
ALLOW_VERSION_MISMATCH = setting(
    "allow_version_mismatch",
    bool,
    "--allow-version-mismatch/--no-allow-version-mismatch",
    text="Serve a model pickled with another scikit-learn version.",
    panel=MODEL_PANEL,
)
TRUSTED_TYPES = setting(
    "trusted_types",
    list[str],
    "--trusted-type",
    text="A type a .skops file may load (repeatable).",
    panel=MODEL_PANEL,
)
CODE_PATHS = setting(
    "code_paths",
    list[Path],
    "--code-path",
    text="Your module (.py file or package directory) the model's pickle imports; "
    "repeatable. It runs with this process's rights.",
    panel=MODEL_PANEL,
)
CACHE_DIR = setting(
    "cache_dir",
    Path,
    text="Where remote model sources are cached (RESTPREDICT_CACHE_DIR); the user cache "
    "folder unless given.",
    panel=MODEL_PANEL,
)
OFFLINE = setting(
    "offline",
    bool,
    "--offline/--online",
    text="Use only the cache for a remote source; fetch nothing.",
    panel=MODEL_PANEL,
)
UNKNOWN_COLUMNS = setting(
    "unknown_columns",
    str,
    text="reject|ignore named input columns the model lacks.",
    panel=MODEL_PANEL,
)
MODEL_NAME = setting(
    "model_name",
    str,
    text="Name used in protocol paths and metadata; the model file's stem unless given.",
    panel=MODEL_PANEL,
)
ALLOW_SCHEMA_CHANGE = setting(
    "allow_schema_change",
    bool,
    "--allow-schema-change/--no-allow-schema-change",
    text="Let reloads change the model's inputs or outputs.",
    panel=MODEL_PANEL,
)
BACKEND = setting(
    "backend",
    str,
    text="auto|sklearn|onnx. auto serves on the model's exact fast path where it verifies, "
    "else scikit-learn; onnx: ONNX Runtime if verified (the onnx extra).",
    panel=MODEL_PANEL,
)

#: Several models in one server (docs/several-models.md).
MODELS_FLAGS = (
    setting(
        "model_dir",
        Path,
        text="Serve every model file and MLflow model folder in this folder (and turn the "
        "repository API on).",
        panel=MODEL_PANEL,
    ),
    setting(
        "default_model",
        str,
        text="With several models, the one /predict, /metadata and /invocations use.",
        panel=MODEL_PANEL,
    ),
    setting(
        "repository_api",
        bool,
        "--repository-api/--no-repository-api",
        text="The V2 model repository API: index, load, unload.",
        panel=MODEL_PANEL,
    ),
)

#: What serve, predict and info take to load a model source.
SOURCE_FLAGS = (SHA256, ALLOW_VERSION_MISMATCH, TRUSTED_TYPES, CODE_PATHS, CACHE_DIR, OFFLINE)
#: Where a remote source is cached; init and dockerize take these too.
CACHE_FLAGS = (CACHE_DIR, OFFLINE)

SERVER_FLAGS = (
    setting("host", str, text="Interface to bind.", panel=SERVER_PANEL),
    setting("port", int, "--port", "-p", text="TCP port to listen on.", panel=SERVER_PANEL),
    setting("workers", int, "--workers", "-w", text="Worker processes.", panel=SERVER_PANEL),
    setting(
        "http_parser",
        str,
        "--http",
        text="HTTP parser: auto|httptools|h11 (auto: httptools when installed).",
        panel=SERVER_PANEL,
    ),
    setting(
        "keep_alive_timeout",
        int,
        text="Seconds an idle connection stays open.",
        panel=SERVER_PANEL,
    ),
    setting(
        "drain_seconds",
        float,
        text="On SIGTERM, serve this long with readiness 503 first.",
        panel=SERVER_PANEL,
    ),
    setting(
        "shutdown_timeout",
        int,
        text="Then, seconds in-flight requests get to finish.",
        panel=SERVER_PANEL,
    ),
)

LIMITS_FLAGS = (
    setting(
        "max_body_bytes", int, text="Largest request body, in bytes (413).", panel=LIMITS_PANEL
    ),
    setting("max_rows", int, text="Most rows per request (422).", panel=LIMITS_PANEL),
    setting(
        "max_concurrency",
        int,
        text="Hard cap on requests in flight per worker (503).",
        panel=LIMITS_PANEL,
    ),
    setting(
        "queue_delay_target_ms",
        float,
        text="Waits for the model over this mean overload (503).",
        panel=LIMITS_PANEL,
    ),
    setting(
        "queue_delay_interval_ms",
        float,
        text="How long waits must stay over the target.",
        panel=LIMITS_PANEL,
    ),
    setting(
        "header_timeout", float, text="Seconds to send request headers (408).", panel=LIMITS_PANEL
    ),
    setting(
        "body_timeout", float, text="Seconds to send the request body (408).", panel=LIMITS_PANEL
    ),
    setting(
        "max_header_bytes",
        int,
        text="Largest request head, in bytes (431).",
        panel=LIMITS_PANEL,
    ),
    setting(
        "max_header_count", int, text="Most header fields in a request (431).", panel=LIMITS_PANEL
    ),
    setting(
        "send_timeout",
        float,
        text="Seconds a client may read nothing before it is dropped.",
        panel=LIMITS_PANEL,
    ),
    setting(
        "write_buffer_budget",
        int,
        text="Unread answer bytes over all clients.",
        panel=LIMITS_PANEL,
    ),
    setting(
        "prediction_timeout", float, text="Seconds a prediction may take (504).", panel=LIMITS_PANEL
    ),
    setting(
        "reload_timeout",
        float,
        text="Seconds a reload or a repository load or unload may take (504).",
        panel=LIMITS_PANEL,
    ),
)

SECURITY_FLAGS = (
    setting(
        "api_key_file",
        Path,
        text="File holding the API key clients must send as a bearer token.",
        panel=SECURITY_PANEL,
    ),
    setting(
        "open_paths",
        list[str],
        "--open-path",
        text="A path served without the API key (repeatable).",
        panel=SECURITY_PANEL,
    ),
    setting(
        "cors_origins",
        list[str],
        "--cors-origin",
        text="A browser origin CORS allows (repeatable); none unless given.",
        panel=SECURITY_PANEL,
    ),
    setting(
        "tls_cert",
        Path,
        text="PEM certificate to serve HTTPS with (needs --tls-key).",
        panel=SECURITY_PANEL,
    ),
    setting("tls_key", Path, text="PEM private key of --tls-cert.", panel=SECURITY_PANEL),
    setting(
        "tls_client_ca",
        Path,
        text="Require client certificates signed by this PEM CA (mutual TLS).",
        panel=SECURITY_PANEL,
    ),
)

BATCHING_FLAGS = (
    setting(
        "batching",
        bool,
        "--batching/--no-batching",
        text="Stack concurrent requests into one predict call.",
        panel=BATCHING_PANEL,
    ),
    setting(
        "max_batch_size",
        int,
        text="Most requests per predict call; 1 turns batching off.",
        panel=BATCHING_PANEL,
    ),
    setting(
        "max_batch_wait_ms",
        float,
        text="Most a batch waits for arriving requests, in ms.",
        panel=BATCHING_PANEL,
    ),
)

LOGGING_FLAGS = (
    setting("log_level", str, text="critical|error|warning|info|debug.", panel=LOGGING_PANEL),
    setting(
        "log_format",
        str,
        text="json|text|auto (text on a terminal, else JSON).",
        panel=LOGGING_PANEL,
    ),
    setting(
        "access_log",
        bool,
        "--access-log/--no-access-log",
        text="Log each request.",
        panel=LOGGING_PANEL,
    ),
)

SERVE_FLAGS = (
    *SOURCE_FLAGS,
    UNKNOWN_COLUMNS,
    MODEL_NAME,
    ALLOW_SCHEMA_CHANGE,
    BACKEND,
    *MODELS_FLAGS,
    *SERVER_FLAGS,
    *LIMITS_FLAGS,
    *SECURITY_FLAGS,
    *BATCHING_FLAGS,
    *LOGGING_FLAGS,
)

# --- A client of a running server (predict and info with --url) ---
CLIENT_FLAGS = (
    option(
        "api_key_file",
        Path,
        "--api-key-file",
        text="A file holding the server's API key (or RESTPREDICT_API_KEY; never a value on "
        "the command line).",
        panel=CLIENT_PANEL,
    ),
    option(
        "ca_cert",
        Path,
        "--ca-cert",
        text="With an https:// --url: the PEM CA the server must chain to.",
        panel=CLIENT_PANEL,
    ),
    option(
        "client_cert",
        Path,
        "--client-cert",
        text="A PEM client certificate (mutual TLS).",
        panel=CLIENT_PANEL,
    ),
    option(
        "client_key",
        Path,
        "--client-key",
        text="The PEM private key of --client-cert.",
        panel=CLIENT_PANEL,
    ),
)

TIMEOUT = option(
    "timeout", float, text="Seconds per HTTP request.", panel=CLIENT_PANEL, default=30.0
)

# --- predict: the rows in, the predictions out ---
IO_FLAGS = (
    option(
        "features",
        str,
        "--features",
        "-f",
        text="One row: 5.1,3.5,1.4,0.2 or a JSON array.",
        panel=IO_PANEL,
    ),
    option(
        "input_path",
        str,
        "--input",
        "-i",
        text="Rows from a file, directory or glob: .parquet, .arrow/.feather, .csv, .json, "
        ".jsonl; - for stdin.",
        panel=IO_PANEL,
    ),
    option(
        "input_format",
        str,
        "--format",
        text="parquet|arrow|csv|json|jsonl; from the suffix unless given.",
        panel=IO_PANEL,
    ),
    option(
        "output",
        str,
        "--output",
        "-o",
        text="Where to write: a file (format from suffix), or - for stdout.",
        panel=IO_PANEL,
    ),
    option(
        "output_format",
        str,
        text="table|json|csv on stdout; parquet|arrow|csv|jsonl for --output files "
        "(from the suffix unless given; on stdout, table on a TTY, else json).",
        panel=IO_PANEL,
    ),
    option(
        "proba", bool, "--proba", text="Include class probabilities.", panel=IO_PANEL, default=False
    ),
    option(
        "chunk_size",
        int,
        text="Rows per request (1000 unless given) or per batch (65536 unless given).",
        panel=IO_PANEL,
        min=1,
    ),
)

# --- dockerize: the docker: and kubernetes: sections of restpredict.yaml ---
DOCKER_FLAGS = (
    setting(
        "docker.image",
        str,
        text="Image name (docker.image); the model file's stem unless given.",
        panel=DEPLOY_PANEL,
    ),
    setting(
        "docker.tag",
        str,
        text="Image tag (docker.tag); model- and 12 hex digits of the model's SHA-256 unless "
        "given.",
        panel=DEPLOY_PANEL,
    ),
    setting(
        "docker.base_image",
        str,
        text="Base image (docker.base_image); python:VERSION-slim unless given.",
        panel=DEPLOY_PANEL,
    ),
    setting(
        "docker.port", int, "--port", "-p", text="Container port (docker.port).", panel=DEPLOY_PANEL
    ),
    setting(
        "docker.workers",
        int,
        "--workers",
        "-w",
        text="Worker processes per container (docker.workers).",
        panel=DEPLOY_PANEL,
    ),
    setting(
        "docker.model_fetch",
        str,
        text="bake|startup (docker.model_fetch): bake a remote model into the image, or leave "
        "it out and have each container fetch the pinned source when it starts.",
        panel=DEPLOY_PANEL,
    ),
)
KUBERNETES_FLAGS = (
    setting(
        "kubernetes.namespace",
        str,
        text="Kubernetes namespace (kubernetes.namespace).",
        panel=DEPLOY_PANEL,
    ),
)

# --- predict: scoring a table into a file ---
BATCH_FLAGS = (
    option(
        "keep_columns",
        str,
        text="Input columns to carry into the output, comma-separated: id,customer.",
        panel=BATCH_PANEL,
    ),
    option(
        "keep_all",
        bool,
        "--keep-all",
        text="Carry every input column into the output.",
        panel=BATCH_PANEL,
        default=False,
    ),
    option(
        "on_error",
        str,
        text="A bad row fails the run (fail) or goes to --errors-to (skip).",
        panel=BATCH_PANEL,
        default="fail",
    ),
    option(
        "errors_to",
        Path,
        text="With --on-error skip: bad rows' numbers and reasons (.jsonl, .csv).",
        panel=BATCH_PANEL,
    ),
    option(
        "jobs",
        int,
        text="Processes predicting, for models using one core.",
        panel=BATCH_PANEL,
        default=1,
        min=1,
    ),
    option(
        "engine",
        str,
        text="local, or spark (Parquet in and out; the spark extra).",
        panel=BATCH_PANEL,
        default="local",
    ),
    option(
        "master",
        str,
        text="Spark master URL for --engine spark.",
        panel=BATCH_PANEL,
        default="local[*]",
    ),
)
