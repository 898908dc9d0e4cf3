"""``shared.durations``: the one spelling of durations in settings and rule files."""

from __future__ import annotations

import pytest

from shared.durations import parse_duration_ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("250ms", 250),
        ("10s", 10_000),
        ("1m", 60_000),
        ("2h", 7_200_000),
        ("0s", 0),
        (" 30 s ", 30_000),
        ("90m", 5_400_000),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["10", "", "s", "1.5s", "-1s", "10 sec", "1d", "10S", "1m30s"])
def test_anything_else_is_refused_with_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration") as info:
        parse_duration_ms(text)
    assert repr(text) in str(info.value)
