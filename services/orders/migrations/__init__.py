"""Plain-SQL migrations of the ``orders`` schema, applied by :mod:`shared.migrations`."""
