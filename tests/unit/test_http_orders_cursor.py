"""The page cursor's OpenAPI pattern is exactly what the service makes and accepts: every
cursor the schema allows decodes, and every cursor the service hands out matches."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from services.orders.adapters.queries import decode_cursor, encode_cursor
from services.orders.schemas import CURSOR

PATTERN = re.compile(CURSOR)


@given(st.from_regex(CURSOR, fullmatch=True))
def test_every_cursor_the_schema_allows_is_accepted(cursor: str) -> None:
    assert 0 <= decode_cursor(cursor) < 10**18


@given(st.integers(min_value=0, max_value=10**18 - 1))
def test_every_cursor_the_service_makes_matches_the_schema(seq: int) -> None:
    cursor = encode_cursor(seq)
    assert PATTERN.fullmatch(cursor)
    assert decode_cursor(cursor) == seq


def test_what_the_schema_refuses() -> None:
    for cursor in ["", "MQ=", "MTIz!", "QUJD", "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ", "M"]:
        assert PATTERN.fullmatch(cursor) is None, cursor
