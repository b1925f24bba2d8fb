"""The naive model server: what one writes first, with no batching and no tuning.

Each request is parsed by Starlette's ``request.json()``, made 2-D with ``np.array(ndmin=2)`` and
predicted on its own in the thread pool, as Starlette advises for sync, CPU-bound work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import joblib
import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from benchmarks.baselines._serve import parse_args, serve


async def predict(request: Request) -> JSONResponse:
    """Predict the posted ``features`` (one row or a list of rows)."""
    body = await request.json()
    features = np.array(body["features"], ndmin=2)
    predictions = await run_in_threadpool(request.app.state.model.predict, features)
    return JSONResponse({"predictions": predictions.tolist()})


def create_app(model_path: Path) -> Starlette:
    """The app, loading the model once in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.model = joblib.load(model_path)
        yield

    return Starlette(routes=[Route("/predict", predict, methods=["POST"])], lifespan=lifespan)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve ``--model`` on ``--port``."""
    args = parse_args(argv, description=__doc__, needs_model=True)
    serve(create_app(Path(args.model)), args.port)


if __name__ == "__main__":
    main()
