"""``millrace``: one entry point, one subcommand per workflow."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> module under millrace.commands that registers it
COMMANDS = ("run", "simulate", "topics", "demo", "infra", "contracts", "masterdata", "schedule")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand is imported (a faster start)."""
    parser = argparse.ArgumentParser(
        prog="millrace", description="Millrace: the event backbone for industrial platforms."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS if only is None else (only,):
        module = importlib.import_module(f"millrace.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    only = args_in[0] if args_in and args_in[0] in COMMANDS else None
    args = build_parser(only).parse_args(args_in)
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
