"""``GET /openapi.json`` and the interactive docs page at ``GET /docs``, served offline.

The document is built once per loaded model (``openapi.document.openapi_document``) and kept on
the app's state with the model it describes, so a model swapped in later gets a fresh
one. The page is Swagger UI 5 (it renders OpenAPI 3.1) from the ``swagger-ui-bundle-v2``
package, served by the app itself: the browser fetches nothing from anywhere else.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from restpredict.asgi.registry import ModelRegistry
from restpredict.asgi.responses import JSON
from restpredict.asgi.state import current_model
from restpredict.errors import NotFoundError
from restpredict.model.loading import LoadedModel
from restpredict.settings import Settings

if TYPE_CHECKING:  # imported on the first /docs request, not at every server's startup
    import jinja2

__all__ = ["ASSETS", "docs_page", "openapi_json", "routes", "swagger_ui_dir"]

# The Swagger UI files the page loads (and the source maps a browser's devtools ask for).
ASSETS = frozenset(
    {
        "swagger-ui.css",
        "swagger-ui.css.map",
        "swagger-ui-bundle.js",
        "swagger-ui-bundle.js.map",
        "favicon-16x16.png",
        "favicon-32x32.png",
    }
)
_ASSETS_PATH = "/docs/assets"


async def openapi_json(request: Request) -> Response:
    """``GET /openapi.json``: the document for the model(s) being served (503 until loaded)."""
    model, several = _described(request)
    state = request.app.state
    cached: tuple[object, bytes] | None = getattr(state, "openapi", None)
    key = (model, *several)
    if cached is None or cached[0] != key:
        # Lazy for start-up time: the document's modules load on the first request.
        from restpredict.openapi.document import openapi_document

        settings: Settings = state.settings
        cached = (key, msgspec.json.encode(openapi_document(model, settings, several)))
        state.openapi = cached
    return Response(cached[1], media_type=JSON)


def _described(request: Request) -> tuple[LoadedModel, tuple[LoadedModel, ...]]:
    """The model the nameless routes describe (the default, else the first served) and, with
    several models configured, every model served (by name: its default version)."""
    state = request.app.state
    if not state.settings.several_models:
        return current_model(request), ()
    registry: ModelRegistry = state.registry
    names = registry.names()
    several = tuple(current_model(request, name) for name in names)
    if not several:
        return current_model(request), ()  # 503 (or 404) naming why
    return registry.default or several[0], several


async def docs_page(request: Request) -> Response:
    """``GET /docs``: Swagger UI, pointed at ``openapi.json`` by relative URLs (proxy-safe)."""
    model, several = _described(request)
    names = ", ".join(m.name for m in several) or model.name
    html = _template().render(
        title=f"restpredict: {names}", assets=_ASSETS_PATH.lstrip("/"), spec_url="openapi.json"
    )
    return HTMLResponse(html)


async def asset(request: Request) -> Response:
    """``GET /docs/assets/{name}``: one of the Swagger UI files, and nothing else."""
    name = request.path_params["name"]
    if name not in ASSETS:
        raise NotFoundError(f"no docs asset named {name!r}")
    return FileResponse(swagger_ui_dir() / name)


@functools.cache
def swagger_ui_dir() -> Path:
    """Where swagger-ui-bundle-v2 installed Swagger UI's files (a versioned folder)."""
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


@functools.cache
def _template() -> jinja2.Template:
    import jinja2

    text = importlib.resources.files("restpredict.templates").joinpath("docs.html.j2").read_text()
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=True)
    return environment.from_string(text)


routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs_page, methods=["GET"]),
    Route(_ASSETS_PATH + "/{name}", asset, methods=["GET"]),
]
