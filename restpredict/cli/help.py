"""``--help`` whose defaults are the settings model's own, read only when help is shown.

A setting's option has no default of its own (``None`` means "not given", so the YAML file
and the environment can set it); its help shows the default of the field it sets, read from
``Settings`` (or ``DeploySettings`` for ``docker.*``), so no default is ever written twice.
The settings model is imported only to render help: ``serve`` imports the library later,
with garbage collection paused.
"""

from __future__ import annotations

import copy
from typing import Any

from typer.core import TyperCommand, TyperOption

__all__ = ["SettingDefault", "SettingsCommand", "setting_default"]


class SettingDefault(str):
    """An option's ``show_default``: the path of the setting whose default help shows."""

    __slots__ = ()


class SettingsCommand(TyperCommand):
    """A command whose setting options show their setting's default in ``--help``."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        declared = self.params
        self.params = [_with_setting_default(param) for param in declared]
        try:
            super().format_help(ctx, formatter)
        finally:
            self.params = declared


def setting_default(path: str) -> Any:
    """The default of the field at ``path``: ``port``, or ``docker.port`` for a section."""
    # lazy: pydantic and the settings models only when help is shown (start-up time)
    from pydantic import BaseModel

    from restpredict.ship.deploy_settings import DeploySettings

    model: type[BaseModel] = DeploySettings
    *sections, name = path.split(".")
    for section in sections:
        annotation = model.model_fields[section].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation
    return model.model_fields[name].get_default(call_default_factory=True)


def _with_setting_default(param: Any) -> Any:
    """A copy of a setting's option that shows the setting's default (none when it has none)."""
    if not isinstance(param, TyperOption) or not isinstance(param.show_default, SettingDefault):
        return param
    shown = copy.copy(param)
    shown.default = setting_default(param.show_default)
    shown.show_default = shown.default is not None and shown.default != ()
    return shown
