"""The command line and uvicorn settings that both baselines share, so they differ only in app."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn
from starlette.applications import Starlette

HOST = "127.0.0.1"


def parse_args(
    argv: Sequence[str] | None, *, description: str | None, needs_model: bool
) -> argparse.Namespace:
    """``--port`` and, for servers of a model, ``--model PATH``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=needs_model, help="a joblib file")
    return parser.parse_args(argv)


def serve(app: Starlette, port: int) -> None:
    """One worker, warnings only, no access log: the same settings for every baseline."""
    uvicorn.run(app, host=HOST, port=port, workers=1, log_level="warning", access_log=False)
