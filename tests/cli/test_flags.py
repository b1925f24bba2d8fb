"""with_flags: options declared once, handed to a command as one mapping per group."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from typer.testing import CliRunner

from restpredict.cli.flags import Flags, option, setting, with_flags

PORT = setting("port", int, "--port", "-p", text="TCP port.", panel="Server")
TRUSTED = setting("trusted_types", list[str], "--trusted-type", text="A type.", panel="Model")
CODE = setting("code_paths", list[Path], "--code-path", text="A module.", panel="Model")
JOBS = option("jobs", int, text="Processes.", panel="Batch", default=1, min=1)


def tiny_app() -> typer.Typer:
    app = typer.Typer(add_completion=False)

    @app.command()
    @with_flags(server=(PORT,), model=(TRUSTED, CODE), batch=(JOBS,))
    def show(
        name: Annotated[str, typer.Argument(help="A name.")],
        *,
        server: Flags,
        model: Flags,
        batch: Flags,
    ) -> None:
        """Print what the command was handed."""
        kind = type(model["trusted_types"]).__name__
        typer.echo(
            json.dumps({"name": name, **server, **model, **batch, "kind": kind}, default=str)
        )

    @app.command()
    def other() -> None:
        """A second command, so that show is a subcommand."""

    return app


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(tiny_app(), list(args))
    return result.exit_code, result.output


def test_options_not_given_are_none_and_options_keep_their_own_defaults() -> None:
    code, out = invoke("show", "iris")
    assert code == 0, out
    assert json.loads(out) == {
        "name": "iris",
        "port": None,
        "trusted_types": None,
        "code_paths": None,
        "jobs": 1,
        "kind": "NoneType",
    }


def test_each_group_holds_its_options_and_repeated_ones_come_as_a_tuple() -> None:
    code, out = invoke(
        "show",
        "iris",
        "-p",
        "8081",
        "--trusted-type",
        "a.B",
        "--trusted-type",
        "c.D",
        "--jobs",
        "3",
    )
    assert code == 0, out
    got = json.loads(out)
    assert got["port"] == 8081 and got["jobs"] == 3
    assert got["trusted_types"] == ["a.B", "c.D"] and got["kind"] == "tuple"


def test_the_declared_validation_and_types_still_apply() -> None:
    code, out = invoke("show", "iris", "--port", "eighty")
    assert code == 2 and "--port" in out
    code, out = invoke("show", "iris", "--jobs", "0")
    assert code == 2 and "--jobs" in out
