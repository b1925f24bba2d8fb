"""The OpenAPI section of each model a server of several serves: its own ``/predict`` and
``/metadata`` under ``/models/{name}/``, with request and answer schemas from that model.

Each model's schema components (``Row``, ``Record``, ``Label``, ``Probabilities``) are named
for it (``iris.Row``), and so are its operation ids, so models with different features sit in
one document side by side.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from restpredict.model.loading import LoadedModel
from restpredict.openapi import core
from restpredict.openapi.context import OpenAPIContext, PathItems, Schema
from restpredict.settings import Settings

__all__ = ["MODEL_SCHEMAS", "model_sections"]

#: The components that differ from model to model.
MODEL_SCHEMAS = ("Row", "Record", "Label", "Probabilities")


def model_sections(
    models: Sequence[LoadedModel],
    settings: Settings,
    schemas: dict[str, Schema],
    components: Callable[[OpenAPIContext], dict[str, Any]],
) -> PathItems:
    """``/models/{name}/predict`` and ``/metadata`` of every model; their components (built by
    ``components``, the document's) are added to ``schemas`` under the model's name."""
    paths: PathItems = {}
    for model in models:
        api = OpenAPIContext.of(model, settings)
        items = core.openapi_paths(api)
        built: dict[str, Schema] = components(api)["schemas"]
        own = {k: v for k, v in built.items() if k in MODEL_SCHEMAS}
        text = json.dumps({"predict": items["/predict"], "metadata": items["/metadata"]})
        for name in own:
            ref = '"#/components/schemas/'
            text = text.replace(f'{ref}{name}"', f'{ref}{model.name}.{name}"')
        section: dict[str, Any] = json.loads(text)
        for key, item in section.items():
            for operation in item.values():
                operation["operationId"] = f"{model.name}.{operation['operationId']}"
                operation["tags"] = [f"model {model.name}"]
            paths[f"/models/{model.name}/{key}"] = item
        schemas.update({f"{model.name}.{name}": schema for name, schema in own.items()})
    return paths
