"""The Starlette application factory: ``create_app`` puts the layers below together.

``create_app(settings, model)`` builds the app in each process that serves (the one server
process, or each worker). ``server.run`` loads, verifies and warms the model once, before it
binds the socket; with several workers the supervisor forks them from the process that holds
it (``server/supervisor.py``), so no worker loads a model. Only an app given no model (built
in-process, as tests do) loads and warms what is configured in its lifespan, off the event
loop; ``/health/ready`` answers 503 until that has succeeded. What the app is made of lives
below: the routes (``routes/``), the OpenAPI document and docs page (``openapi/``), the
middleware (``middleware/``) and what they all stand on (``asgi/``).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp

from restpredict.asgi.admission import ADMISSION, Admission, QueueDelay
from restpredict.asgi.batching import make_batcher
from restpredict.asgi.registry import ModelRegistry
from restpredict.asgi.reloader import Reloader
from restpredict.asgi.responses import exception_handlers, problem_response
from restpredict.asgi.shadow import ShadowTraffic
from restpredict.asgi.state import ServingHeaders, ServingState
from restpredict.middleware.access import AccessMiddleware, instrument
from restpredict.middleware.batching import batching_middleware
from restpredict.middleware.direct import DirectRoute
from restpredict.middleware.hot_route import HotRoute
from restpredict.middleware.leases import lease_middleware
from restpredict.middleware.refusals import EarlyRefusals
from restpredict.middleware.stack import protective_middleware
from restpredict.model.loading import LoadedModel
from restpredict.model.prepare import Prepared, prepare_model, prepare_models
from restpredict.openapi.docs import routes as docs_routes
from restpredict.routes import kserve_v1, mlflow, open_inference
from restpredict.routes.admin import admin_routes
from restpredict.routes.core import PredictEndpoint, core_routes, model_routes
from restpredict.routes.repository import repository_enabled
from restpredict.routes.repository import routes as repository_routes
from restpredict.settings import Settings

__all__ = ["YOUNG_COLLECTION_THRESHOLD", "create_app"]


#: Young objects allocated (net) before the collector runs, once the server serves.
YOUNG_COLLECTION_THRESHOLD = 10_000


def create_app(
    settings: Settings,
    model: LoadedModel | None = None,
    *,
    models: list[Prepared] | None = None,
    metrics_dir: Path | None = None,
    reread: Callable[[], Settings] | None = None,
) -> Starlette:
    """Build the app around ``model``, a prepared one (``model.prepare.prepare_model``), or
    ``models`` when several are configured (``prepare_models``); or prepare what is configured
    in the lifespan when none is given (an app built in-process: ``server.run`` always passes
    what it prepared, and several workers are forked holding it).

    ``metrics_dir`` is the multiprocess metrics directory ``server.run`` made for its workers;
    ``reread`` reads the configuration again for a reload of several models' traffic and shadows.
    """
    batcher = make_batcher(settings)
    repository = repository_enabled(settings)
    registry = ModelRegistry(
        default_name=settings.default_model,
        leasing=repository and settings.workers == 1,
        traffic=settings.traffic,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Admission]]:
        if settings.several_models:
            prepared = models
            if prepared is None:
                prepared = await run_in_threadpool(prepare_models, settings)
            for item, loaded in prepared:
                registry.put(loaded, default=item.default)
                app.state.metrics.observe_model(loaded)
                if batcher is not None and item.settings.max_batch_size < settings.max_batch_size:
                    batcher.model_batch_sizes[item.name] = item.settings.max_batch_size
        else:
            one = model if model is not None else await run_in_threadpool(prepare_model, settings)
            registry.put(one)
            app.state.metrics.observe_model(one)
        async with contextlib.AsyncExitStack() as stack:
            if batcher is not None:
                app.state.batcher = await stack.enter_async_context(batcher)
            app.state.model = registry.default
            stack.enter_context(_serving_collection())
            app.state.ready = True
            # In the lifespan state, the server's protocol finds it (refusals before the app).
            yield {ADMISSION: admission}
            app.state.ready = False

    serving = ServingState()
    predict = PredictEndpoint(settings, batcher)
    admission = _admission(settings, serving)
    if batcher is not None:  # the batcher is what measures how long requests wait
        admission.delay = QueueDelay(
            settings.queue_delay_target_ms / 1000, settings.queue_delay_interval_ms / 1000
        )
        batcher.on_wait = admission.observe
        batcher.on_call = admission.called
        admission.on_client_refused = batcher.refused
    app = _ServingApp(
        middleware=[
            *protective_middleware(settings, problem_response, admission),
            *batching_middleware(batcher),
            *lease_middleware(registry),
            Middleware(DirectRoute, method="POST", path="/predict", endpoint=predict),
        ],
        routes=[
            *core_routes(predict),
            *(model_routes(predict) if settings.several_models else []),
            *(repository_routes if repository else []),
            *kserve_v1.routes,
            *open_inference.routes,
            *mlflow.routes,
            *admin_routes(settings),
            *docs_routes,
        ],
        exception_handlers=exception_handlers,
        lifespan=lifespan,
    )
    # Starlette would answer "/predict/" with a 307 to a URL built from the client's Host
    # header: a redirect anyone can point at another site. A path is served as it is, or 404.
    app.router.redirect_slashes = False
    metrics = instrument(app, settings, metrics_dir, response_headers=ServingHeaders(serving))
    admission.on_refused = EarlyRefusals(app, metrics)
    if batcher is not None:
        batcher.on_batch = metrics.observe_batch
    app.state.settings = settings
    app.state.batcher = None
    app.state.model = None
    app.state.registry = registry
    app.state.shadow = None
    if settings.shadow:
        app.state.shadow = ShadowTraffic(
            settings.shadow, registry, metrics.observe_shadow, settings.shadow_tolerance
        )
    app.state.ready = False
    app.state.serving = serving
    app.state.reloader = Reloader(app.state, settings, reread)
    return app


def _admission(settings: Settings, serving: ServingState) -> Admission:
    """The admission decision (``asgi/admission.py``), refusing before the app when it can."""
    admission = Admission(
        max_concurrency=settings.max_concurrency,
        retry_after=settings.retry_after,
        exempt_paths=settings.limit_exempt_paths,
        batch_size=settings.max_batch_size,
    )
    if settings.cors_origins:  # a 503 a browser can read needs the CORS layer's headers
        admission.early = lambda: False
    else:  # while draining, answers must also say Connection: close (``ServingHeaders``)
        admission.early = lambda: not (serving.draining or serving.retiring)
    return admission


class _ServingApp(Starlette):
    """Starlette without its outermost ``ServerErrorMiddleware`` when ours comes next, and
    with the busiest route's layers fused (``middleware/hot_route.py``) where they can be.

    ``AccessMiddleware`` already answers an unhandled error with the app's 500 handler (with
    the request id) and re-raises it for the server to log, as that layer would: one layer and
    one send wrapper fewer on every request (~2 µs in-process).
    """

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if isinstance(stack, ServerErrorMiddleware) and isinstance(stack.app, AccessMiddleware):
            stack = stack.app
        if isinstance(stack, AccessMiddleware):
            return HotRoute.over(stack) or stack
        return stack


@contextlib.contextmanager
def _serving_collection() -> Iterator[None]:
    """Garbage collection tuned for serving, restored after.

    The model, scikit-learn and friends are long-lived: a full collection of them took about
    0.3 s here (the worst p99 spikes under load), so they are frozen out of it. And the
    requests in flight hold more objects than Python's 700 that start a young collection: at
    32 clients one ran every ~30 requests, found nothing to free, and cost 3.5 µs a request
    (~100 µs each). At 10,000 one runs every few thousand requests (~1 ms each); garbage in
    reference cycles, the only kind it frees, waits that much longer.
    """
    gc.freeze()
    threshold = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
