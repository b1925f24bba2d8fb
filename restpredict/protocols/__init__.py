"""The ecosystem's wire formats beside ``/predict``: KServe V1, Open Inference V2 and MLflow.

Each module turns its protocol's requests into rows for ``payload.rows_to_query`` (the one
validation path), predicts through ``app.run_query`` (the one prediction path) and renders
errors in its protocol's own shape. ``routes`` is what ``create_app`` mounts;
``openapi_paths`` is how they appear in ``/openapi.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from restpredict.protocols import kserve_v1, mlflow, open_inference

if TYPE_CHECKING:  # the OpenAPI modules load on the first /openapi.json, not at startup
    from restpredict.openapi import OpenAPIContext, PathItems

__all__ = ["openapi_paths", "routes"]

routes = [*kserve_v1.routes, *open_inference.routes, *mlflow.routes]


def openapi_paths(api: OpenAPIContext) -> PathItems:
    """The protocols' routes as OpenAPI path items, for ``openapi.openapi_document``."""
    from restpredict.protocols import open_inference_openapi

    return {
        **kserve_v1.openapi_paths(api),
        **open_inference_openapi.openapi_paths(api),
        **mlflow.openapi_paths(api),
    }
