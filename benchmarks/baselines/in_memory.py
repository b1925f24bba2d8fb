"""The batch baseline: load the whole Parquet table into memory, then one ``model.predict``.

What one writes first to score a table. Prints one ``BASELINE_JSON {...}`` line with the seconds
spent loading and predicting; its predictions go to an ``.npy`` file for the answers check.

    python -m benchmarks.baselines.in_memory MODEL TABLE.parquet PREDICTIONS.npy
"""

from __future__ import annotations

import json
import sys
import time

import joblib
import numpy as np
import pyarrow.parquet as pq


def main(model_path: str, table_path: str, predictions_path: str) -> None:
    """Load, predict, report."""
    model = joblib.load(model_path)
    started = time.perf_counter()
    table = pq.read_table(table_path)
    features = np.column_stack([column.to_numpy() for column in table.columns])
    del table
    loaded = time.perf_counter()
    predictions = model.predict(features)
    done = time.perf_counter()
    np.save(predictions_path, predictions)
    print("BASELINE_JSON " + json.dumps({"load_s": loaded - started, "predict_s": done - loaded}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
