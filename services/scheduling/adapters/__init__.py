"""Scheduling adapters: PostgreSQL, Kafka consumer, outbox relay, planner."""
