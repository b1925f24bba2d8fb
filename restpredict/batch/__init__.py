"""Batch scoring: a table of any size in, the same table scored out, with the server's rules.

``score_table(model, BatchJob(...))`` streams Parquet, Arrow IPC, CSV or JSON rows through the
server's validation and the model, batch by batch, into a typed Parquet, Arrow, CSV or JSON
Lines file written under a temporary name and renamed when complete. ``restpredict predict
--output`` is its command line; ``restpredict.spark`` scores Spark DataFrames the same way.
"""

from __future__ import annotations

from restpredict.batch.formats import OUTPUT_FORMATS, Format, format_of
from restpredict.batch.job import BatchJob, OnError, Progress, Summary
from restpredict.batch.runner import score_table
from restpredict.batch.validate import Reject

__all__ = [
    "OUTPUT_FORMATS",
    "BatchJob",
    "Format",
    "OnError",
    "Progress",
    "Reject",
    "Summary",
    "format_of",
    "score_table",
]
