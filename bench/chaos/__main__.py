"""``python -m bench.chaos`` (``make chaos``): one run, the report written to
``bench/results/chaos.json``, exit status 1 when an invariant failed."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from bench.chaos.config import RESULTS, ChaosConfig
from bench.chaos.driver import run, say


def main() -> int:
    # Every broker restart makes aiokafka log each failed connection; the load counts its
    # retries instead, and the services' own logs are in the run's state dir.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    cfg = ChaosConfig.from_env()
    report = asyncio.run(run(cfg))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=str) + "\n")
    for name, verdict in report["invariants"].items():
        state = "ok" if verdict["ok"] else f"FAILED ({verdict['problem_count']} problems)"
        say(f"{name}: {state} {verdict['figures']}")
        for problem in verdict["problems"][:5]:
            say(f"  {problem}")
    say(f"report: {RESULTS}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
