"""Durations written as people write them in settings and rule files: ``500ms``, ``10s``, ``1m``.

Window sizes (``MILLRACE_TELEMETRY_WINDOWS``), alarm rules (``for``, ``over``, ``absent_for``),
machine-state rules (``down_after``) and the demo's options all take this one spelling, so it
lives in the shared library rather than in any one service.
"""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def parse_duration_ms(text: str) -> int:
    """``"10s"`` -> 10000: a whole number and a unit (``ms``, ``s``, ``m`` or ``h``).

    A bare number is refused rather than read in some default unit: ``10`` in a rule file is
    more likely a slip than ten milliseconds. Raises ``ValueError`` naming the text.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration (use e.g. 500ms, 10s, 1m): {text!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]
