"""The one path every endpoint predicts through: batched when on, else one call in a thread."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import Scope

from restpredict.asgi.batching import Batcher
from restpredict.asgi.shadow import ShadowTraffic
from restpredict.codecs.payload import Query
from restpredict.errors import RestPredictError
from restpredict.model.loading import LoadedModel, Prediction
from restpredict.observability.exchange import exchange_of, record_rows, timed

__all__ = ["predict_with", "run_query"]

logger = logging.getLogger("uvicorn.error")


async def run_query(request: Request, model: LoadedModel, query: Query) -> Prediction:
    """The one path every endpoint predicts through, off the event loop (batched when on)."""
    return await predict_with(request.app.state.batcher, request.scope, model, query)


async def predict_with(
    batcher: Batcher | None, scope: Scope, model: LoadedModel, query: Query
) -> Prediction:
    """``run_query`` for plain ASGI endpoints: through the app's batcher (running once the
    app is ready), or, without one, one call in a thread."""
    record_rows(scope, len(query))
    try:
        with timed(scope, "predict"):
            if batcher is not None:
                prediction = await batcher.predict(scope, model, query)
            else:
                prediction = await run_in_threadpool(
                    model.predict, query.rows, labels=query.labels, proba=query.proba
                )
    except RestPredictError as error:
        if error.log_detail is not None:  # the client gets a generic detail; the log, this
            request_id = exchange_of(scope).request_id
            logger.warning("request %s: %s (%s)", request_id, error.detail, error.log_detail)
        raise
    shadow: ShadowTraffic | None = scope["app"].state.shadow if "app" in scope else None
    if shadow is not None:
        shadow.after(model, query, prediction)
    return prediction
