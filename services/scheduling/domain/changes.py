"""Which assignments of a new plan differ from the previous one (what to announce again)."""

from __future__ import annotations

from collections.abc import Mapping

from services.scheduling.domain.model import Assignment, OpKey, Plan


def changed(previous: Mapping[OpKey, Assignment], plan: Plan) -> list[Assignment]:
    """The plan's assignments that are new or whose machine or times differ from ``previous``."""
    return [a for a in plan.assignments if previous.get(a.key) != a]
