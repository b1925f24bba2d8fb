"""The ceiling: parse the JSON body with the standard library, answer a constant.

It measures what Starlette, uvicorn and ``json`` cost on this machine with no model at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from benchmarks.baselines._serve import parse_args, serve


async def predict(request: Request) -> JSONResponse:
    """Decode the body (the work every server must do), then answer without a model."""
    json.loads(await request.body())
    return JSONResponse({"predictions": [0]})


def create_app() -> Starlette:
    """The app: one route."""
    return Starlette(routes=[Route("/predict", predict, methods=["POST"])])


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the ceiling app on ``--port``."""
    args = parse_args(argv, description=__doc__, needs_model=False)
    serve(create_app(), args.port)


if __name__ == "__main__":
    main()
