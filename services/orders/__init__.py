"""Orders: customised order intake over HTTP, lifecycle from downstream events, outbox."""
