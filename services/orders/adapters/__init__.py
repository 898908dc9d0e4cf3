"""I/O at the edges: PostgreSQL unit of work, outbox relay, Kafka consumer."""
