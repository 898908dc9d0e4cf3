"""``make bench-scheduling``: solution quality on public job-shop and flexible job-shop instances
(through ``millrace schedule solve``, against the plain CP-SAT model at the same budget and the
best-known makespans) and the solver at plant scale (5,000 operations)."""
