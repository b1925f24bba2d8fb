"""Every error restpredict raises on purpose.

Each class carries the HTTP status the server answers with, the exit code the CLI
exits with, and a stable machine-readable ``code`` that clients can switch on.
The server maps them to RFC 9457 problem+json bodies in one handler (``asgi/responses.py``);
the CLI maps them to one red line and an exit code in one place (``cli/main.py``).

    RestPredictError
    ├── ConfigError ................ bad restpredict.yaml, env var or flag    (exit 2)
    │   └── BuildContextError ...... dockerize/init cannot write its output
    ├── StartupError ............... the server cannot start (port taken)   (exit 3)
    │   └── ModelLoadError ......... model file cannot be served
    │       ├── IntegrityError ..... SHA-256 pin does not match
    │       ├── VersionMismatchError pickled with another scikit-learn
    │       └── UnsupportedModelError unknown format, cannot predict, unfitted
    ├── SourceError ................ the model source cannot be fetched       (exit 7)
    │   ├── SourceNotFoundError .... no such object, bucket, version or alias
    │   ├── SourceAccessError ...... credentials refused (401/403)
    │   ├── SourceUnavailableError . network, timeout, truncated, not cached offline
    │   └── UnsafeArchiveError ..... an archive reaching outside its folder or too big
    ├── InputError ................. the request or input rows are wrong    (422, exit 4)
    │   ├── MalformedBodyError ..... not parseable JSON                      (400)
    │   ├── PayloadTooLargeError ... body over the size limit                (413)
    │   └── UnsupportedMediaTypeError  content type is not JSON              (415)
    ├── BadRequestError ............ the HTTP message itself is malformed    (400)
    │   ├── HeadersTooLargeError ... request headers over the byte/count limit (431)
    │   └── TransferCodingError .... a transfer coding other than chunked    (501)
    ├── ClientDisconnectedError .... the client left before its answer    (499, logged only)
    ├── NotFoundError .............. no such route                           (404)
    ├── MethodNotAllowedError ...... route exists, method does not          (405)
    ├── NotReadyError .............. model not loaded or warmed up yet       (503)
    ├── UnauthorizedError .......... missing or wrong bearer token           (401)
    ├── RequestTimeoutError ........ headers or body arrived too slowly      (408)
    ├── OverloadedError ............ too many requests in flight             (503)
    ├── ReloadError ................ a hot reload was refused; old model kept (409)
    ├── RepositoryError ............ a repository load/unload is refused      (409)
    ├── ReloadTimeoutError ......... a reload or repository load took too long (504)
    ├── PredictionError ............ the model failed or returned NaN/inf    (500, exit 6)
    │   └── PredictionTimeoutError . the model took longer than allowed      (504)
    └── ClientError ................ talking to a remote server failed       (exit 5)
        ├── ServerUnreachableError . connection refused, DNS, timeout
        └── RemoteError ............ the server answered with an error
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BadRequestError",
    "BuildContextError",
    "ClientDisconnectedError",
    "ClientError",
    "ConfigError",
    "ExitCode",
    "HeadersTooLargeError",
    "InputError",
    "IntegrityError",
    "MalformedBodyError",
    "MethodNotAllowedError",
    "ModelLoadError",
    "NotFoundError",
    "NotReadyError",
    "OverloadedError",
    "PayloadTooLargeError",
    "PredictionError",
    "PredictionTimeoutError",
    "ReloadError",
    "ReloadTimeoutError",
    "RemoteError",
    "RepositoryError",
    "RequestTimeoutError",
    "RestPredictError",
    "ServerUnreachableError",
    "SourceAccessError",
    "SourceError",
    "SourceNotFoundError",
    "SourceUnavailableError",
    "StartupError",
    "TransferCodingError",
    "UnauthorizedError",
    "UnsafeArchiveError",
    "UnsupportedMediaTypeError",
    "UnsupportedModelError",
    "VersionMismatchError",
]


class ExitCode:
    """Documented process exit codes (docs/cli.md, "Exit codes")."""

    OK = 0
    UNEXPECTED = 1
    CONFIG = 2
    STARTUP = 3
    BAD_INPUT = 4
    REMOTE = 5
    PREDICTION = 6
    SOURCE = 7


class RestPredictError(Exception):
    """Base class: an error with a message meant for the user, never a traceback."""

    status: ClassVar[int] = 500
    exit_code: ClassVar[int] = ExitCode.UNEXPECTED
    code: str = "internal_error"
    title: ClassVar[str] = "Internal error"
    #: What only the server log may see (a model's own exception message): never answered.
    log_detail: str | None = None

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra


class ConfigError(RestPredictError):
    """A setting is unknown, of the wrong type or out of range."""

    exit_code = ExitCode.CONFIG
    code = "config_error"
    title = "Invalid configuration"


class BuildContextError(ConfigError):
    """``dockerize``/``init`` cannot write its output: it exists, or a pin is unknown."""

    code = "build_context_error"
    title = "Cannot write the build context"


class StartupError(RestPredictError):
    """The server cannot start: the address is taken, or the model cannot be served."""

    exit_code = ExitCode.STARTUP
    code = "startup_failed"
    title = "Server cannot start"


class ModelLoadError(StartupError):
    """The model file cannot be read or served."""

    code = "model_load_error"
    title = "Model cannot be loaded"


class IntegrityError(ModelLoadError):
    """The file's SHA-256 differs from the pinned one; nothing was unpickled."""

    code = "sha256_mismatch"


class VersionMismatchError(ModelLoadError):
    """The model was pickled with a different scikit-learn than the one running."""

    code = "sklearn_version_mismatch"


class UnsupportedModelError(ModelLoadError):
    """Unknown file format, an object that cannot predict, or an unfitted estimator."""

    code = "unsupported_model"


class SourceError(RestPredictError):
    """The model source (a bucket, URL, MLflow registry or archive) cannot be fetched."""

    exit_code = ExitCode.SOURCE
    code = "source_error"
    title = "Model source cannot be fetched"


class SourceNotFoundError(SourceError):
    """The object, bucket, run, model version or alias does not exist."""

    code = "source_not_found"


class SourceAccessError(SourceError):
    """The provider refused the credentials it found (or found none)."""

    code = "source_access_denied"


class SourceUnavailableError(SourceError):
    """A network error, timeout or truncated download; or offline with nothing cached."""

    code = "source_unavailable"


class UnsafeArchiveError(SourceError):
    """An archive entry would land outside its folder, is a link out, or is too big."""

    code = "unsafe_archive"


class InputError(RestPredictError):
    """The request is well-formed JSON but not what the model expects."""

    status = 422
    exit_code = ExitCode.BAD_INPUT
    code = "invalid_input"
    title = "Invalid input"


class MalformedBodyError(InputError):
    """The body is not parseable JSON (syntax, encoding, NaN tokens, depth, range)."""

    status = 400
    code = "malformed_json"
    title = "Malformed request body"


class PayloadTooLargeError(InputError):
    """The body is larger than ``max_body_bytes``."""

    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class UnsupportedMediaTypeError(InputError):
    """The request's Content-Type is not JSON."""

    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class BadRequestError(RestPredictError):
    """The HTTP message is malformed: no or two Host headers, bad framing, not HTTP at all."""

    status = 400
    code = "bad_request"
    title = "Bad request"


class HeadersTooLargeError(BadRequestError):
    """The request headers are over ``max_header_bytes`` or ``max_header_count``."""

    status = 431
    code = "headers_too_large"
    title = "Request header fields too large"


class TransferCodingError(BadRequestError):
    """A ``Transfer-Encoding`` other than exactly ``chunked``."""

    status = 501
    code = "transfer_coding_not_implemented"
    title = "Not implemented"


class ClientDisconnectedError(RestPredictError):
    """The client closed its connection before its answer: recorded as 499, never answered."""

    status = 499
    code = "client_disconnected"
    title = "Client closed request"


class NotFoundError(RestPredictError):
    """No route matches the path."""

    status = 404
    code = "not_found"
    title = "Not found"


class MethodNotAllowedError(RestPredictError):
    """The path exists but not with this HTTP method."""

    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class NotReadyError(RestPredictError):
    """The model is not loaded and warmed up yet, or the server is shutting down."""

    status = 503
    code = "not_ready"
    title = "Service not ready"


class UnauthorizedError(RestPredictError):
    """The request carries no bearer token, or the wrong one (the two are not told apart)."""

    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class RequestTimeoutError(RestPredictError):
    """The request headers or body did not arrive within the read timeout."""

    status = 408
    code = "request_timeout"
    title = "Request timeout"


class OverloadedError(RestPredictError):
    """Every prediction slot is busy; the client should retry after ``Retry-After``."""

    status = 503
    code = "overloaded"
    title = "Service overloaded"


class ReloadError(RestPredictError):
    """A new model could not be loaded, verified or warmed up; the old one keeps serving."""

    status = 409
    code = "reload_failed"
    title = "Reload refused"


class RepositoryError(RestPredictError):
    """A model repository load or unload cannot be done here (or failed); nothing changed."""

    status = 409
    code = "repository_refused"
    title = "Repository request refused"


class ReloadTimeoutError(RestPredictError):
    """A reload or repository load or unload did not answer within ``reload_timeout``."""

    status = 504
    code = "reload_timeout"
    title = "Reload timed out"


class PredictionError(RestPredictError):
    """The model raised, or returned values JSON cannot carry (NaN, inf)."""

    exit_code = ExitCode.PREDICTION
    code = "prediction_failed"
    title = "Prediction failed"


class PredictionTimeoutError(PredictionError):
    """The prediction did not finish within ``prediction_timeout``."""

    status = 504
    code = "prediction_timeout"
    title = "Prediction timed out"


class ClientError(RestPredictError):
    """A call to a remote restpredict server failed."""

    exit_code = ExitCode.REMOTE
    code = "client_error"
    title = "Remote call failed"


class ServerUnreachableError(ClientError):
    """The server could not be reached (refused, DNS, timeout)."""

    code = "server_unreachable"


class RemoteError(ClientError):
    """The server answered with an error status; ``detail`` carries its message."""

    code = "remote_error"
