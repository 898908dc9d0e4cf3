"""observe_many is exactly ``count`` calls of Histogram.observe."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from services.telemetry.metrics import observe_many

BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


def _samples(h: Histogram) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("le", "")): s.value
        for metric in h.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


@given(st.lists(st.tuples(st.floats(0, 1000, allow_nan=False), st.integers(0, 50)), max_size=20))
def test_observe_many_equals_repeated_observe(groups: list[tuple[float, int]]) -> None:
    one = Histogram("a", "a", buckets=BUCKETS, registry=CollectorRegistry())
    many = Histogram("a", "a", buckets=BUCKETS, registry=CollectorRegistry())
    for amount, count in groups:
        for _ in range(count):
            one.observe(amount)
        observe_many(many, amount, count)
    got, want = _samples(many), _samples(one)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert abs(got[key] - value) <= 1e-9 * max(1.0, abs(value)), key
