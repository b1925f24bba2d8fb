"""Every option of every command explains itself in ``--help``, with its setting's default."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main
from typer.core import TyperOption
from typer.testing import CliRunner

from restpredict.cli import app
from restpredict.cli.help import SettingDefault
from restpredict.settings import Settings
from restpredict.ship.deploy_settings import DockerSettings, KubernetesSettings

COMMANDS = typer.main.get_command(app).commands  # type: ignore[attr-defined]
PLAIN = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def rendered(command: str) -> str:
    result = CliRunner().invoke(app, [command, "--help"], env=PLAIN)
    assert result.exit_code == 0, result.output
    return result.stdout


def row_of(help_text: str, param: TyperOption) -> str:
    """The option's row of the help table, its wrapped lines joined, spacing collapsed."""
    lines = [line.strip("│ ").rstrip("│").strip() for line in help_text.splitlines()]
    name = max(param.opts, key=len)
    start = next(i for i, line in enumerate(lines) if line.split(" ")[0] == name)
    row = [lines[start]]
    for line in lines[start + 1 :]:
        if not line or line.startswith(("-", "╰", "╭")):
            break
        row.append(line)
    return " ".join(" ".join(row).split())


def expected_default(param: TyperOption) -> str | None:
    """What ``[default: ...]`` must say: the setting's own default, or the flag's."""
    if isinstance(param.show_default, SettingDefault):
        value = field_default(param.show_default)
    else:
        value = param.default if param.show_default else None
    if value is None or value == () or (value is False and not param.secondary_opts):
        return None
    if isinstance(value, bool):
        chosen = param.opts[0] if value else param.secondary_opts[0]
        return chosen.removeprefix("--")
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def field_default(path: str) -> Any:
    """Read straight from the settings models (not through the CLI's own lookup)."""
    section, _, name = path.rpartition(".")
    model = {"": Settings, "docker": DockerSettings, "kubernetes": KubernetesSettings}[section]
    return model.model_fields[name].default


CASES = [
    pytest.param(name, param, id=f"{name} {max(param.opts, key=len)}")
    for name, command in COMMANDS.items()
    for param in command.params
    if isinstance(param, TyperOption)
]


@pytest.mark.parametrize(("command", "param"), CASES)
def test_every_option_shows_its_help_and_its_default(command: str, param: TyperOption) -> None:
    assert param.help, f"{command} {param.opts[0]} has no help text"
    row = row_of(rendered(command), param)
    assert " ".join(param.help.split()) in row
    default = expected_default(param)
    if default is None:
        assert "[default:" not in row
    else:
        assert f"[default: {default}]" in row


def test_serve_options_are_settings_whose_defaults_are_read_not_written() -> None:
    """Apart from --config and --check, every serve option sets a Settings field."""
    for param in COMMANDS["serve"].params:
        if isinstance(param, TyperOption) and param.name not in ("config", "check"):
            assert isinstance(param.show_default, SettingDefault), param.opts
            assert param.show_default in Settings.model_fields
            assert param.default is None  # not given: the file and environment may set it


@pytest.mark.parametrize(
    ("command", "panels"),
    [
        ("serve", ["Model", "Server", "Limits and timeouts", "Security", "Batching", "Logging"]),
        ("predict", ["Model", "Remote server", "Input and output", "Batch scoring"]),
        ("info", ["Model", "Remote server"]),
        ("dockerize", ["Model", "Deploy"]),
    ],
)
def test_options_are_grouped_into_panels(command: str, panels: list[str]) -> None:
    text = rendered(command)
    for panel in panels:
        assert f"╭─ {panel} ─" in text
