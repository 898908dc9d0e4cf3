"""Prometheus metrics read the way a scrape reads them (``REGISTRY.get_sample_value``), not
through a metric object's private value."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry


def sample(name: str, registry: CollectorRegistry = REGISTRY, **labels: str) -> float:
    """The value of the sample ``name`` (as exposed: a counter's ends in ``_total``) with
    ``labels``. A labelled series appears at its first use, so one not used yet reads 0."""
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
