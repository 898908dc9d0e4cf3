"""Declarative alarm rules and their event-time evaluation engine."""
