"""One module per ``onepass`` subcommand; each defines ``register(subparsers)``."""
