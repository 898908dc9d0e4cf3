"""``make bench-orders``: sustained order intake against ``millrace run orders``."""
