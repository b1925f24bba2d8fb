"""The ``restpredict`` command: a thin skin over the library.

Each command builds Settings from flags, calls one library function and leaves
error handling to ``_errors_to_exit_codes``: a RestPredictError becomes one red
line on stderr and its documented exit code, never a traceback.
"""

from __future__ import annotations

import functools
import gc
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from restpredict._version import __version__
from restpredict.cli.flags import Flags, with_flags
from restpredict.cli.help import SettingsCommand
from restpredict.cli.options import (
    BACKEND,
    BATCH_FLAGS,
    CACHE_FLAGS,
    CLIENT_FLAGS,
    CODE_PATHS,
    DOCKER_FLAGS,
    IO_FLAGS,
    KUBERNETES_FLAGS,
    MODEL_PANEL,
    SERVE_FLAGS,
    SHA256,
    SOURCE_FLAGS,
    TIMEOUT,
    TRUSTED_TYPES,
    UNKNOWN_COLUMNS,
    CheckOpt,
    ConfigOpt,
    ModelArg,
    UrlOpt,
)
from restpredict.errors import ConfigError, ExitCode, InputError, RestPredictError
from restpredict.sources.uri import redact

# The library (scikit-learn, pandas, pydantic, the app) is imported inside the commands, not
# here: `serve` imports it with garbage collection paused (_collection_paused), and `version`
# needs none of it (a command's --help reads only the settings models, for its defaults).
# httpx and Rich's progress bar are imported only where used.
if TYPE_CHECKING:
    from restpredict.cli.client import Client
    from restpredict.cli.render import OutputFormat
    from restpredict.model.loading import LoadedModel
    from restpredict.model.schema import ModelSchema
    from restpredict.settings import Settings
    from restpredict.ship.deploy_settings import DeploySettings

__all__ = ["app"]

app = typer.Typer(
    name="restpredict",
    help="Serve a trained scikit-learn model over HTTP, query it, and ship it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


def _errors_to_exit_codes(command: F) -> F:
    """The one place library errors become a message and an exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RestPredictError as exc:
            _fail(exc.detail, exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception as exc:  # a bug: still one line, never a traceback
            _fail(f"unexpected {type(exc).__name__}: {exc}", ExitCode.UNEXPECTED)

    return wrapper  # type: ignore[return-value]


def _fail(message: str, code: int) -> None:
    stderr.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def _settings(config: Path | None, **flags: Any) -> Settings:
    # lazy: start-up time (see the note on imports above)
    from restpredict.settings import load_settings

    return load_settings(config, environ=os.environ, **flags)


def _deploy_settings(config: Path | None, **flags: Any) -> DeploySettings:
    """``_settings`` with the ``docker:`` and ``kubernetes:`` sections, for ``dockerize``."""
    # lazy: start-up time (see the note on imports above)
    from restpredict.ship.deploy_settings import load_deploy_settings

    return load_deploy_settings(config, environ=os.environ, **flags)


def _given(section: Flags) -> Flags | None:
    """A ``docker:``/``kubernetes:`` section of the flags given, or None when none is."""
    return {k: v for k, v in section.items() if v is not None} or None


@app.command(cls=SettingsCommand)
@_errors_to_exit_codes
@with_flags(flags=SERVE_FLAGS)
def serve(
    model: Annotated[
        list[str] | None,
        typer.Argument(
            help="Model source(s), as for predict; several serve several models, each at "
            "/models/NAME/predict (NAME: the file's stem). Omit to use the demo.",
            show_default=False,
        ),
    ] = None,
    config: ConfigOpt = None,
    check: CheckOpt = False,
    *,
    flags: Flags,
) -> None:
    """Serve MODEL on POST /predict (the built-in iris demo when no MODEL is given)."""
    with _collection_paused():
        # lazy: start-up time (see the note on imports above)
        from restpredict.cli.render import startup_panel
        from restpredict.model.prepare import prepare_model, prepare_models
        from restpredict.observability.logs import resolve_format
        from restpredict.server.exposure import exposure_warning
        from restpredict.server.run import run

        sources = model or []
        several = [{"source": source} for source in sources] if len(sources) > 1 else None
        one = sources[0] if len(sources) == 1 else None
        settings = _settings(config, model=one, models=several, **flags)
        text = resolve_format(settings.log_format, sys.stderr) == "text"
        warning = exposure_warning(settings)
        if warning is not None and text:
            stderr.print(f"[bold yellow]warning:[/] {escape(warning)}", soft_wrap=True)
        elif warning is not None:  # a log line like the server's: JSON from the first line
            import logging.config

            from restpredict.observability.logs import logging_config

            logging.config.dictConfig(logging_config(settings, sys.stderr))
            logging.getLogger("restpredict.server.exposure").warning(warning)
        _note_unpinned_pickle(settings)
        if settings.several_models:
            prepared = prepare_models(settings)
            for item, each in prepared:
                if check or text:
                    typer.echo(_served_line(item.label, each, settings))
            if not check:

                def reread() -> Settings:  # a reload applies its traffic and shadows
                    return _settings(config, model=one, models=several, **flags)

                run(settings, models=prepared, reread=reread)
            return
        loaded = prepare_model(settings)
        if check:
            s = loaded.schema
            typer.echo(f"{loaded.source}: ready to serve ({s.estimator}, {s.n_features} features)")
            return
        # The banner is for a person at a terminal: under a supervisor or in a container the
        # output is the JSON log from its first line.
        if text:
            example = list(loaded.schema.example or [])
            Console().print(startup_panel(loaded.metadata(), settings, example))
    run(settings, loaded)


def _served_line(label: str, model: LoadedModel, settings: Settings) -> str:
    s = model.schema
    where = f"http://{settings.host}:{settings.port}/models/{model.name}/predict"
    return f"{label}: {model.source} ({s.estimator}, {s.n_features} features) at {where}"


@app.command(cls=SettingsCommand)
@_errors_to_exit_codes
@with_flags(
    source=(*SOURCE_FLAGS, UNKNOWN_COLUMNS, BACKEND),
    remote=(*CLIENT_FLAGS, TIMEOUT),
    rows=IO_FLAGS,
    batch=BATCH_FLAGS,
)
def predict(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Predict locally with this model source (see serve).",
            rich_help_panel=MODEL_PANEL,
        ),
    ] = None,
    url: UrlOpt = None,
    config: ConfigOpt = None,
    *,
    source: Flags,
    remote: Flags,
    rows: Flags,
    batch: Flags,
) -> None:
    """Predict rows with a model source (--model) or a running server (--url).

    With --output FILE (or a Parquet/Arrow input) the input is scored as a table, a batch at a
    time, into a typed file written only when complete; see the batch scoring docs.
    """
    features, input_path, input_format = rows["features"], rows["input_path"], rows["input_format"]
    proba, chunk_size = rows["proba"], rows["chunk_size"]
    if (features is None) == (input_path is None):
        raise InputError("give exactly one of --features or --input")
    if model is not None and url is not None:
        raise InputError("give --model or --url, not both")
    output, output_format = _legacy_output(rows["output"], rows["output_format"])
    settings = _settings(config, model=model, api_key_file=remote["api_key_file"], **source)
    scoring = _BatchFlags(**{**batch, "keep_columns": _names(batch["keep_columns"])})
    if _is_batch(input_path, input_format, output, output_format, scoring):
        if features is not None or url is not None:
            raise InputError(
                "--output files, Parquet/Arrow input and the batch options score --input "
                "locally with --model; --features and --url write to stdout"
            )
        assert input_path is not None
        if scoring.engine == "spark" and source["backend"] not in (None, "sklearn"):
            raise InputError(
                "--engine spark predicts with scikit-learn on its executors; leave out --backend"
            )
        _score_table(
            settings, input_path, input_format, output, output_format, proba, chunk_size, scoring
        )
        return
    tls = _client_tls(remote)
    _predict_to_stdout(
        settings,
        url,
        features,
        input_path,
        input_format,
        output_format,
        proba,
        chunk_size,
        remote["timeout"],
        tls,
    )


def _predict_to_stdout(
    settings: Settings,
    url: str | None,
    features: str | None,
    input_path: str | None,
    input_format: str | None,
    output_format: str | None,
    proba: bool,
    chunk_size: int | None,
    timeout: float,
    tls: dict[str, Any],
) -> None:
    """One row or a CSV/JSON stream, to stdout as a table, JSON Lines or CSV."""
    # lazy: start-up time (see the note on imports above)
    from restpredict.cli.render import PredictionWriter
    from restpredict.codecs.rows import chunks, detect_format, parse_features
    from restpredict.model.prepare import prepare_model

    writer = PredictionWriter(_output_format(output_format), sys.stdout)
    with ExitStack() as stack:
        if url is not None:
            # lazy: start-up time (see the note on imports above)
            from restpredict.cli.client import Client

            client = stack.enter_context(
                Client(url, timeout=timeout, api_key=_key(settings), **tls)
            )
            run_chunk: Predictor = lambda rows, p: client.predict(rows, proba=p)  # noqa: E731
            schema: Callable[[], ModelSchema] = lambda: _remote_schema(client)  # noqa: E731
        else:
            # Prepared as serve prepares it (warm-up, then the configured backend), so a row
            # gets the answer /predict gives.
            loaded = prepare_model(settings)
            run_chunk = _local(loaded, settings)
            schema = lambda: loaded.schema  # noqa: E731
        if features is not None:
            writer.write(run_chunk([parse_features(features)], proba))
        else:
            assert input_path is not None
            fmt_in = detect_format(input_path, input_format)
            stream, progress = stack.enter_context(_open_rows(input_path))
            for chunk in chunks(stream, fmt_in, schema(), chunk_size or 1000):
                writer.write(run_chunk(chunk, proba))
                progress()
    if writer.table is not None:
        Console().print(writer.table)


@app.command(cls=SettingsCommand)
@_errors_to_exit_codes
@with_flags(source=SOURCE_FLAGS, remote=CLIENT_FLAGS)
def info(
    model: ModelArg = None,
    url: UrlOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metadata as JSON.")] = False,
    config: ConfigOpt = None,
    *,
    source: Flags,
    remote: Flags,
) -> None:
    """Show a model's input schema, classes and versions."""
    # lazy: start-up time (see the note on imports above)
    from restpredict.cli.render import metadata_table

    if url is not None:
        # lazy: start-up time (see the note on imports above)
        from restpredict.cli.client import Client

        keyed = _settings(config, api_key_file=remote["api_key_file"])
        tls = _client_tls(remote)
        with Client(url, api_key=_key(keyed), **tls) as client:
            meta = client.metadata()
    else:
        settings = _settings(config, model=model, **source)
        # lazy: start-up time (see the note on imports above)
        from restpredict.model.dependencies import find_dependencies
        from restpredict.model.prepare import prepare_model

        _note_unpinned_pickle(settings)
        loaded = prepare_model(settings)
        meta = loaded.metadata()  # with the backend that would serve it
        # What an image of this model must install (dockerize pins the same), found from it.
        estimator = getattr(loaded.estimator, "original", loaded.estimator)
        found = find_dependencies(estimator, settings.code_paths)
        meta["requires"] = found.distributions
        meta["system_packages"] = list(found.system_packages)
        if found.unprovided:
            meta["unprovided_modules"] = list(found.unprovided)
    if as_json:
        typer.echo(json.dumps(meta, indent=2))
    else:
        Console().print(metadata_table(meta))


def _client_tls(remote: Flags) -> dict[str, Any]:
    """The TLS files a remote client presents and trusts."""
    ca_cert, client_cert, client_key = (remote[k] for k in ("ca_cert", "client_cert", "client_key"))
    if (client_cert is None) != (client_key is None):
        raise InputError("give --client-cert and --client-key together")
    pair = (client_cert, client_key) if client_cert is not None and client_key else None
    return {"ca_cert": ca_cert, "client_cert": pair}


def _key(settings: Settings) -> str | None:
    """The API key to send, from ``--api-key-file`` or ``RESTPREDICT_API_KEY``."""
    return settings.api_key.get_secret_value() if settings.api_key is not None else None


def _note_unpinned_pickle(settings: Settings) -> None:
    """Say once, to a person at a terminal, that an unpinned pickle's code is about to run."""
    from restpredict.model.trust import pickle_note

    note = pickle_note(settings) if stderr.is_terminal else None
    if note is not None:
        stderr.print(f"[bold yellow]note:[/] {escape(note)}", soft_wrap=True)


@app.command(cls=SettingsCommand)
@_errors_to_exit_codes
@with_flags(source=(TRUSTED_TYPES, CODE_PATHS, *CACHE_FLAGS))
def init(
    model: Annotated[
        str,
        typer.Argument(
            help="The model source to describe (see serve).",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the config.")
    ] = Path("restpredict.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    *,
    source: Flags,
) -> None:
    """Write a commented starter restpredict.yaml for MODEL (for serve and dockerize)."""
    # lazy: start-up time (see the note on imports above)
    from restpredict.ship.starter import write_starter_config

    settings = _settings(None, model=model, **source)
    path = write_starter_config(settings, output, force=force)
    Console().print(f"Wrote [bold]{escape(str(path))}[/]. Next:")
    Console().print(f"  restpredict dockerize --config {escape(str(path))} --output build/")


@app.command(cls=SettingsCommand)
@_errors_to_exit_codes
@with_flags(source=(SHA256, CODE_PATHS, *CACHE_FLAGS), docker=DOCKER_FLAGS, k8s=KUBERNETES_FLAGS)
def dockerize(
    model: ModelArg = None,
    config: ConfigOpt = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory for the build context.")
    ] = Path("build"),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the files in a non-empty --output.")
    ] = False,
    *,
    source: Flags,
    docker: Flags,
    k8s: Flags,
) -> None:
    """Write a container build context and Kubernetes manifests for MODEL."""
    # lazy: start-up time (see the note on imports above)
    from restpredict.ship.dockerize import write_build_context

    settings = _deploy_settings(
        config,
        require_model=True,
        model=model,
        docker=_given(docker),
        kubernetes=_given(k8s),
        **source,
    )
    written = write_build_context(settings, output, force=force)
    console = Console()
    table = Table(title=f"Wrote {escape(str(output))}/", title_justify="left", box=None)
    table.add_column("file")
    table.add_column("bytes", justify="right")
    for path in written.files:
        table.add_row(escape(str(path.relative_to(output))), f"{path.stat().st_size:,}")
    console.print(table)
    for note in written.notes:
        stderr.print(f"[bold yellow]note:[/] {escape(note)}", soft_wrap=True)
    console.print(f"\nImage [bold]{escape(written.plan.reference)}[/]. Next:")
    for what, command in written.next_commands():
        console.print(f"  [dim]# {what}[/]\n  {escape(command)}", soft_wrap=True)


@app.command()
def version() -> None:
    """Print the restpredict version."""
    typer.echo(__version__)


Predictor = Callable[[list[Any], bool], dict[str, Any]]


def _local(model: LoadedModel, settings: Settings) -> Predictor:
    # lazy: start-up time (see the note on imports above)
    from restpredict.codecs.payload import prediction_document, rows_to_query

    def run_chunk(rows: list[Any], proba: bool) -> dict[str, Any]:
        query = rows_to_query(
            rows,
            model.schema,
            max_rows=max(len(rows), 1),
            ignore_unknown=settings.unknown_columns == "ignore",
            proba=proba,
        )
        return prediction_document(model, model.predict(query.rows, proba=query.proba))

    return run_chunk


def _remote_schema(client: Client) -> ModelSchema:
    """CSV columns are typed by the server's schema, read from its /metadata."""
    # lazy: start-up time (see the note on imports above)
    from restpredict.model.schema import ModelSchema

    meta = client.metadata()
    names = meta.get("feature_names")
    kinds = meta.get("feature_kinds")
    return ModelSchema(
        n_features=meta.get("n_features"),
        feature_names=tuple(names) if names else None,
        feature_kinds=tuple(kinds) if kinds else None,
        classes=None,
        has_proba=bool(meta.get("has_proba")),
        task=meta.get("task", "other"),
        estimator=meta.get("estimator", ""),
        example=None,
    )


@contextmanager
def _open_rows(path: str) -> Iterator[tuple[IO[str], Callable[[], None]]]:
    """The input as text, with a progress bar on stderr for large files."""
    # lazy: start-up time (see the note on imports above)
    from restpredict.codecs.rows import CountingReader

    if path == "-":
        yield sys.stdin, lambda: None
        return
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"{path}: cannot read input ({exc.strerror or exc})") from None
    total = os.fstat(raw.fileno()).st_size
    counter = CountingReader(raw)
    text = io.TextIOWrapper(io.BufferedReader(counter), encoding="utf-8", newline="")
    show = total > 1_000_000 and stderr.is_terminal
    # lazy: start-up time (see the note on imports above)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("predicting"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=stderr,
        disable=not show,
        transient=True,
    )
    task = bar.add_task("rows", total=total)
    try:
        with bar:
            yield text, lambda: bar.update(task, completed=counter.count)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    finally:
        raw.close()


@contextmanager
def _collection_paused() -> Iterator[None]:
    """No garbage collection while ``serve`` starts; what start-up built is then frozen.

    Importing scikit-learn, SciPy, pandas and pydantic and unpickling the model allocate
    some 160k long-lived objects. Each full collection during start-up rescans all of them
    (three took ~0.2 s of a ~2 s launch) and finds about a thousand to free. ``gc.freeze()``
    then keeps them out of later collections too, as the app's lifespan does for the model.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if enabled:
            gc.enable()


def _output_format(value: str | None) -> OutputFormat:
    choice = value or ("table" if sys.stdout.isatty() else "json")
    if choice not in _STDOUT_FORMATS:
        raise InputError(
            f"--output-format on stdout must be table, json or csv, not {choice!r} "
            "(parquet, arrow and jsonl are written with --output FILE)"
        )
    return choice  # type: ignore[return-value]


_STDOUT_FORMATS = ("table", "json", "csv")
_TABLE_SUFFIXES = (".parquet", ".pq", ".arrow", ".feather", ".ipc")


@dataclass(frozen=True)
class _BatchFlags:
    """The options only batch scoring takes."""

    keep_columns: tuple[str, ...]
    keep_all: bool
    on_error: str
    errors_to: Path | None
    jobs: int
    engine: str
    master: str


def _legacy_output(output: str | None, fmt: str | None) -> tuple[str | None, str | None]:
    """``-o csv`` named a format before --output named a file: still honoured, with a hint."""
    if output in _STDOUT_FORMATS and fmt is None:
        stderr.print(
            f"[bold yellow]warning:[/] -o/--output now names the destination; for a format "
            f"on stdout write --output-format {output}",
            soft_wrap=True,
        )
        return "-", output
    return output, fmt


def _is_batch(
    input_path: str | None,
    input_format: str | None,
    output: str | None,
    output_format: str | None,
    flags: _BatchFlags,
) -> bool:
    """Whether the input is scored as a table (into a file) rather than streamed to stdout."""
    if output not in (None, "-") or output_format in ("parquet", "arrow", "jsonl"):
        return True
    if flags.keep_columns or flags.keep_all or flags.on_error != "fail" or flags.errors_to:
        return True
    if flags.jobs > 1 or flags.engine != "local":
        return True
    if input_path is None or input_path == "-":
        return False
    if input_format in ("parquet", "arrow"):
        return True
    path = Path(input_path)
    return path.is_dir() or "*" in input_path or path.suffix.lower() in _TABLE_SUFFIXES


def _score_table(
    settings: Settings,
    input_path: str,
    input_format: str | None,
    output: str | None,
    output_format: str | None,
    proba: bool,
    chunk_size: int | None,
    flags: _BatchFlags,
) -> None:
    """``predict --output``: the input scored a batch at a time into a typed file."""
    import signal

    try:
        from restpredict.batch import OUTPUT_FORMATS, BatchJob, format_of, score_table
    except ImportError:
        raise ConfigError(
            "scoring files with --output needs pyarrow: pip install 'restpredict[parquet]'"
        ) from None
    from restpredict.cli.render import BatchProgress
    from restpredict.model.prepare import prepare_model

    if flags.on_error not in ("fail", "skip"):
        raise InputError(f"--on-error must be fail or skip, not {flags.on_error!r}")
    if flags.engine not in ("local", "spark"):
        raise InputError(f"--engine must be local or spark, not {flags.engine!r}")
    if output is None:
        raise InputError("give --output FILE (or - with --output-format csv|jsonl for stdout)")
    signal.signal(signal.SIGTERM, _interrupt)  # so the staged output is removed, not left
    if flags.engine == "spark":
        if "://" in output:
            raise InputError(
                f"--engine spark writes its output directory on this machine's disk, not to "
                f"{redact(output)}; name a local directory (or run without --engine spark, "
                "which uploads to object stores)"
            )
        _score_with_spark(settings, input_path, Path(output), proba, flags)
        return
    fmt = format_of(output, output_format, allowed=OUTPUT_FORMATS)
    if fmt is None:
        raise InputError(
            f"cannot tell the output format of {output!r}; end it in .parquet, .arrow, "
            ".feather, .csv or .jsonl, or give --output-format parquet|arrow|csv|jsonl"
        )
    if output == "-" and fmt in ("parquet", "arrow") and sys.stdout.isatty():
        raise InputError(f"not writing binary {fmt} to a terminal; redirect it or name a file")
    job = BatchJob(
        input=input_path,
        output=sys.stdout.buffer if output == "-" else _destination(output),
        output_format=fmt,
        input_format=input_format,
        keep_columns=flags.keep_columns,
        keep_all=flags.keep_all,
        proba=proba,
        on_error=flags.on_error,  # type: ignore[arg-type]
        errors_to=flags.errors_to,
        batch_size=chunk_size or 65_536,
        jobs=flags.jobs,
        ignore_unknown=settings.unknown_columns == "ignore",
    )
    # Prepared as serve prepares it (warm-up, then the configured backend: the exact fast path
    # by default), so a table gets the answers /predict gives.
    loaded = prepare_model(settings)
    with BatchProgress(stderr) as progress:
        summary = score_table(loaded, job, progress)
    stderr.print(summary.line(), soft_wrap=True, highlight=False)


def _destination(output: str) -> Path | str:
    """A local path, or an object-store URL kept as text (``Path`` would fold its ``//``)."""
    from restpredict.batch.stores import is_remote

    return output if is_remote(output) else Path(output)


def _score_with_spark(
    settings: Settings, input_path: str, output: Path, proba: bool, flags: _BatchFlags
) -> None:
    try:
        from restpredict import spark
    except ImportError:
        raise ConfigError(
            "--engine spark needs pyspark: pip install 'restpredict[spark]'"
        ) from None
    if settings.model is None:
        raise InputError("--engine spark needs --model (the built-in demo is not shipped)")
    if flags.on_error != "fail" or flags.jobs > 1:
        raise InputError("--engine spark takes neither --on-error skip nor --jobs")
    session = spark.spark_session(flags.master)
    try:
        summary = spark.score_parquet(
            session,
            settings.model,
            input_path,
            output,
            keep=flags.keep_columns,
            keep_all=flags.keep_all,
            proba=proba,
            ignore_unknown=settings.unknown_columns == "ignore",
            sha256=settings.sha256,
            allow_version_mismatch=settings.allow_version_mismatch,
            trusted_types=settings.trusted_types,
            code_paths=settings.code_paths,
            cache_dir=settings.cache_dir,
            offline=settings.offline,
        )
    finally:
        session.stop()
    stderr.print(summary.line(), soft_wrap=True, highlight=False)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())
