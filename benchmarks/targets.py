"""The servers a run can load: the table to extend when a variant is worth measuring.

Each command is a template: ``{python}`` is this interpreter, ``{restpredict}`` its
``restpredict`` script, ``{model}`` the joblib file, ``{port}`` a free loopback port.
``extra=True`` appends the ``--extra`` CLI arguments.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.errors import BenchmarkError

HOST = "127.0.0.1"


def _baseline(kind: str) -> tuple[str, ...]:
    return ("{python}", "-m", f"benchmarks.baselines.{kind}", "--port", "{port}")


_RESTPREDICT = ("{restpredict}", "serve", "{model}", "--host", HOST, "--port", "{port}")


@dataclass(frozen=True)
class Target:
    """A named server command, and whether it serves a model (and so takes the gate)."""

    name: str
    command: tuple[str, ...]
    serves_model: bool = True
    extra: bool = False

    def argv(self, model: str, port: int, extra_args: tuple[str, ...]) -> list[str]:
        """The command line for this target on ``port`` serving ``model``."""
        fields = {
            "python": sys.executable,
            "restpredict": restpredict_script() or "restpredict",
            "model": model,
            "port": str(port),
        }
        argv = [part.format(**fields) for part in self.command]
        return argv + list(extra_args) if self.extra else argv


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target("ceiling", _baseline("ceiling"), serves_model=False),
        Target("naive", (*_baseline("naive"), "--model", "{model}")),
        Target("restpredict", _RESTPREDICT, extra=True),
        # Variants, one line each: batching off; the access log off (it logs at info);
        # the batch wait tried when choosing its default.
        Target("restpredict-nobatch", (*_RESTPREDICT, "--no-batching"), extra=True),
        Target("restpredict-quiet", (*_RESTPREDICT, "--log-level", "warning"), extra=True),
        Target("restpredict-wait0", (*_RESTPREDICT, "--max-batch-wait-ms", "0"), extra=True),
        Target("restpredict-wait0.5", (*_RESTPREDICT, "--max-batch-wait-ms", "0.5"), extra=True),
        Target("restpredict-wait5", (*_RESTPREDICT, "--max-batch-wait-ms", "5"), extra=True),
        Target("restpredict-batch64", (*_RESTPREDICT, "--max-batch-size", "64"), extra=True),
        # The second lever: ONNX Runtime, when it verifies (needs the [onnx] extra).
        Target("restpredict-onnx", (*_RESTPREDICT, "--backend", "onnx"), extra=True),
        # The baselines log nothing per request: the same, without restpredict's access log.
        Target(
            "restpredict-onnx-quiet",
            (*_RESTPREDICT, "--backend", "onnx", "--log-level", "warning"),
            extra=True,
        ),
    )
}

DEFAULT_TARGETS = ("ceiling", "naive", "restpredict")


def select(names: tuple[str, ...]) -> tuple[Target, ...]:
    """The named targets, checked to exist and to be runnable here."""
    unknown = [name for name in names if name not in TARGETS]
    if unknown:
        raise BenchmarkError(f"unknown target(s) {unknown}; known: {sorted(TARGETS)}")
    chosen = tuple(TARGETS[name] for name in names)
    if any(target.command[0] == "{restpredict}" for target in chosen):
        _require_restpredict()
    return chosen


def restpredict_script() -> str | None:
    """The ``restpredict`` script of this interpreter, else the first on PATH.

    This interpreter's own comes first: a PATH entry may be a wrapper (a pyenv shim costs a
    second of startup) or another installation altogether.
    """
    beside = Path(sys.executable).parent / "restpredict"
    return str(beside) if beside.is_file() else shutil.which("restpredict")


def _require_restpredict() -> None:
    if importlib.util.find_spec("restpredict") is None or restpredict_script() is None:
        raise BenchmarkError(
            "restpredict is not installed (no module or no `restpredict` command); "
            "run the baselines alone with --targets ceiling,naive"
        )
