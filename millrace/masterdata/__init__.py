"""Master data: a plant description in YAML, published to the compacted master-data topics."""
