"""Options declared once and shared by the commands that take them.

A :class:`Flag` is one command-line option with its Typer declaration. ``with_flags`` adds
groups of them to a command's parameters and hands the command each group as one mapping
(``settings={"port": 8080, ...}``), so a setting is declared once for every command that
takes it and no command lists its settings twice (as parameters, then as arguments).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer

from restpredict.cli.help import SettingDefault

__all__ = ["Flag", "Flags", "option", "setting", "with_flags"]

R = TypeVar("R")
#: What a command receives for one group of flags: each flag's key and its value (None: not
#: given on the command line; a repeated option's values as a tuple).
Flags = dict[str, Any]


@dataclass(frozen=True)
class Flag:
    """One option: the key its value is handed over under, and its Typer annotation."""

    key: str
    hint: Any
    default: Any = None


def setting(path: str, kind: Any, *decls: str, text: str, panel: str, **kwargs: Any) -> Flag:
    """An option that sets the field at ``path``; its help shows that field's default."""
    key = path.rpartition(".")[2]
    info = typer.Option(
        *decls, help=text, rich_help_panel=panel, show_default=SettingDefault(path), **kwargs
    )
    return Flag(key, Annotated[kind | None, info])


def option(
    key: str, kind: Any, *decls: str, text: str, panel: str, default: Any = None, **kwargs: Any
) -> Flag:
    """An option that is no setting (the TLS files a client presents, say)."""
    info = typer.Option(*decls, help=text, rich_help_panel=panel, **kwargs)
    return Flag(key, Annotated[kind if default is not None else kind | None, info], default)


def with_flags(**groups: tuple[Flag, ...]) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Add each group's flags to a command's options; the command gets a group as a mapping."""

    def decorate(command: Callable[..., R]) -> Callable[..., R]:
        own = inspect.signature(command, eval_str=True)
        kept = [p for p in own.parameters.values() if p.name not in groups]
        added = [
            inspect.Parameter(
                f.key, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.hint
            )
            for flags in groups.values()
            for f in flags
        ]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> R:
            for name, flags in groups.items():
                kwargs[name] = {f.key: _value(kwargs.pop(f.key)) for f in flags}
            return command(*args, **kwargs)

        signature = own.replace(parameters=[*kept, *added])
        wrapper.__signature__ = signature  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
        wrapper.__annotations__["return"] = signature.return_annotation
        return wrapper

    return decorate


def _value(value: Any) -> Any:
    """A repeatable option's list as a tuple, and not given (None) when empty."""
    return (tuple(value) or None) if isinstance(value, list) else value
