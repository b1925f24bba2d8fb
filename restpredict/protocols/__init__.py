"""The ecosystem's wire formats beside ``/predict``: KServe V1, Open Inference V2 and MLflow.

Each module turns its protocol's requests into rows for ``payload.rows_to_query`` (the one
validation path), predicts through ``app.run_query`` (the one prediction path) and renders
errors in its protocol's own shape. ``routes`` is what ``create_app`` mounts.
"""

from __future__ import annotations

from restpredict.protocols import kserve_v1, mlflow, open_inference

__all__ = ["routes"]

routes = [*kserve_v1.routes, *open_inference.routes, *mlflow.routes]
