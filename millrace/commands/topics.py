"""``millrace topics``: create every manifest topic and its DLQ on the configured cluster.

Idempotent: topics that exist are left alone (their partitions and configs are not altered), so
it is safe to run before every start.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from contracts.manifest import TOPICS
from shared.kafka import ensure_topics
from shared.settings import ServiceSettings, load_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "topics", help="create every topic of the manifest (and DLQs) on MILLRACE_KAFKA_BOOTSTRAP"
    )
    parser.add_argument(
        "--replication", type=int, default=1, metavar="N", help="replication factor (default 1)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.replication < 1:
        raise SystemExit("--replication must be at least 1")
    settings = load_settings(ServiceSettings)
    created = asyncio.run(ensure_topics(settings, TOPICS, replication=args.replication))
    for name in created:
        print(f"created {name}")
    total = 2 * len(TOPICS)
    print(
        f"{len(created)} created, {total - len(created)} already present "
        f"on {settings.kafka_bootstrap}"
    )
    return 0
