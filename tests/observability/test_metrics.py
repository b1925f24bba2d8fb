"""/metrics and the access log of a real ``restpredict serve`` process, with one and two workers."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 2.8, 4.3, 1.3]]


def test_one_process_exports_exactly_what_prometheus_client_metrics_would() -> None:
    """The plain single-process families against prometheus_client's, fed the same values."""
    from prometheus_client import CollectorRegistry, generate_latest

    from restpredict.observability.metrics import (
        LATENCY_BUCKETS,
        ROW_BUCKETS,
        Metrics,
        _ClientFamilies,
    )

    plain = Metrics()
    reference = CollectorRegistry()
    client = _ClientFamilies(reference)
    seconds = [0.0, 0.0001, *LATENCY_BUCKETS, 0.003, 0.0049999, 0.0050001, 11.0, 1e9]
    rows = [1, 3, *ROW_BUCKETS, 7, 99_999]
    for i, s in enumerate(seconds):
        for route, method, status in (("/predict", "POST", 200), ("/v2", "GET", 404 + i % 2)):
            plain.observe_request(route, method, status, s)
            client.observe_request(route, method, str(status), s)
        for stage in ("decode", "predict"):
            plain.observe_stage("/predict", stage, s)  # type: ignore[arg-type]
            client.observe_stage("/predict", stage, s)  # type: ignore[arg-type]
    for r in rows:
        plain.observe_rows("/predict", r)
        client.observe_rows("/predict", r)
        plain.observe_batch(r)
        client.observe_batch(r)

    def samples(text: str) -> Samples:
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if family.name.startswith(("restpredict_request", "restpredict_decode"))
            or family.name.startswith(("restpredict_predict", "restpredict_batch"))
            if not s.name.endswith("_created") and "in_flight" not in s.name
        }

    ours = samples(plain.exposition(None)[0].decode())
    theirs = samples(generate_latest(reference).decode())
    assert ours == theirs
    # Every series of every family, each with 15 buckets, a count and a sum; 3 counters.
    assert len(ours) == 2 * 17 + 4 * 17 + 3
