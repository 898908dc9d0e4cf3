"""The runtime library every Millrace service uses: settings, Kafka, envelope, DLQ, logging,
metrics, database, health. Mechanisms only; no service's domain lives here."""
