"""One module per ``millrace`` subcommand; each exposes ``register(subparsers)``."""
