"""Pure order domain: no I/O, unit-tested in microseconds."""
