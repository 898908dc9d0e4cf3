"""``millrace contracts generate|check``: the contracts' generated files and their guard rails."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from contracts import check
from contracts.artifacts import generated_files

ROOT = Path(__file__).resolve().parents[2]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("contracts", help="generate or check the event contracts")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    gen = actions.add_parser("generate", help="write JSON Schemas, AsyncAPI and KafkaTopics")
    gen.set_defaults(func=generate)
    chk = actions.add_parser("check", help="fail on drift or on breaking changes against main")
    chk.set_defaults(func=run_check)


def generate(args: argparse.Namespace) -> int:
    """Write every generated file that changed; the models are the source of truth."""
    root: Path = args.root
    for rel, content in generated_files().items():
        path = root / rel
        if path.exists() and path.read_text(encoding="utf-8") == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        print(f"wrote {rel}")
    print("contracts generated")
    return 0


def run_check(args: argparse.Namespace) -> int:
    report = check.run(args.root, generated_files())
    for note in report.notes:
        print(f"note: {note}")
    if report.problems:
        print(f"contracts check FAILED ({len(report.problems)}):", file=sys.stderr)
        for problem in report.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print("contracts check passed: no drift, no breaking changes")
    return 0
