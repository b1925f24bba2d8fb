"""Baseline servers, each runnable as ``python -m benchmarks.baselines.KIND --port P``.

- ``ceiling``: parses the JSON body and answers a constant: the most a Starlette app on uvicorn can
  do here, so no model server on the same stack should expect to beat it on small payloads.
- ``naive``: the obvious model server: parse, ``np.array(..., ndmin=2)``, ``model.predict`` in the
  thread pool, one request at a time.
"""
