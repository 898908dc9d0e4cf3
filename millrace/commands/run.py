"""``millrace run <service>``: run one service in the foreground."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

# service name -> module with ``main() -> int``
SERVICES: dict[str, str] = {
    "telemetry": "services.telemetry.main",
    "orders": "services.orders.main",
    "scheduling": "services.scheduling.main",
}


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "run", help="run a service (configured by MILLRACE_* environment variables)"
    )
    parser.add_argument("service", choices=sorted(SERVICES))
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    module = importlib.import_module(SERVICES[args.service])
    result: int = module.main()
    return result
