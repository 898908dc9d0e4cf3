"""Plain-SQL migrations of the ``scheduling`` schema, applied by :mod:`shared.migrations`."""
