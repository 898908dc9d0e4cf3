"""The hot-path decoder accepts and rejects exactly what the contract model does.

Two levels: ``decode_readings_fast`` must give the same outcome as ``decode_readings`` (same
values, or the same DLQ reason and detail) on every input; and the msgspec fast path on its own
(``_fast``) must never accept what the contract rejects, nor decode a value differently, which
is what makes the fallback design sound. The corpus covers the corners listed in
docs/decisions/0004-hot-path-decoder.md; hypothesis adds structured, mutated and garbage JSON.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.telemetry import ReadingsBatch
from services.telemetry.decode import decode_readings
from services.telemetry.decode_fast import FastBatch, _fast, decode_readings_fast
from shared.dlq import InvalidMessageError

NOW = 1_732_262_400_000
SKEW = 300_000
R1 = b'{"metric":"m","ts":1,"value":1.5}'


def doc(body: bytes = b'"device_id":"a"', readings: bytes = R1) -> bytes:
    return b"{" + body + b',"readings":[' + readings + b"]}"


def reading(value: bytes = b"1.5", ts: bytes = b"1", extra: bytes = b"") -> bytes:
    return b'{"metric":"m","ts":' + ts + b',"value":' + value + extra + b"}"


CORPUS: list[bytes] = [
    doc(),
    doc(b'"device_id":"a\\n"'),
    doc(b'"device_id":"a\n"'),
    doc(b'"device_id":""'),
    doc(b'"device_id":"' + b"a" * 128 + b'"'),
    doc(b'"device_id":"' + b"a" * 129 + b'"'),
    doc(b'"device_id":"-a"'),
    doc(b'"device_id":"a.b:c/d-e_f"'),
    doc(b'"device_id":"\\u0061"'),
    doc(b'"device_id":"\xc3\xa9"'),
    doc(b'"device_id":"a","device_id":"b"'),
    doc(b'"device_id":"a\\n","device_id":"b"'),
    doc(b'"device_id":1'),
    doc(b'"device_id":null'),
    doc(readings=reading(extra=b',"value":2')),
    doc(readings=reading(ts=b"1.0")),
    doc(readings=reading(ts=b"1e3")),
    doc(readings=reading(ts=b"true")),
    doc(readings=reading(ts=b'"1"')),
    doc(readings=reading(ts=b"-1")),
    doc(readings=reading(ts=b"-0")),
    doc(readings=reading(ts=b"253402300799999")),
    doc(readings=reading(ts=b"253402300800000")),
    doc(readings=reading(ts=b"9" * 40)),
    doc(readings=reading(value=b"true")),
    doc(readings=reading(value=b"null")),
    doc(readings=reading(value=b'"71"')),
    doc(readings=reading(value=b"1" + b"0" * 29)),
    doc(readings=reading(value=b"-9223372036854775809")),
    doc(readings=reading(value=b"18446744073709551616")),
    doc(readings=reading(value=str(2**1024 - 2**971).encode())),
    doc(readings=reading(value=str(2**1024 - 2**970).encode())),
    doc(readings=reading(value=b"9" * 4301)),
    doc(readings=reading(value=b"1e400")),
    doc(readings=reading(value=b"-1e400")),
    doc(readings=reading(value=b"1e-400")),
    doc(readings=reading(value=b"1.7976931348623157e308")),
    doc(readings=reading(value=b"NaN")),
    doc(readings=reading(value=b"Infinity")),
    doc(readings=reading(value=b"-Infinity")),
    doc(readings=reading(value=b"-0.0")),
    doc(readings=reading(value=b"1E2")),
    doc(readings=reading(value=b"1.")),
    doc(readings=reading(value=b".5")),
    doc(readings=reading(value=b"01")),
    doc(readings=reading(value=b"0.1000000000000000055511151231257827")),
    doc(readings=reading(extra=b',"quality":"bad"')),
    doc(readings=reading(extra=b',"quality":"uncertain"')),
    doc(readings=reading(extra=b',"quality":"GOOD"')),
    doc(readings=reading(extra=b',"quality":null')),
    doc(readings=reading(extra=b',"x":{"a":[1,2,{"b":null}]}')),
    doc(readings=reading(extra=b',"x":' + b"[" * 198 + b"]" * 198)),
    doc(readings=reading(extra=b',"x":' + b"[" * 199 + b"]" * 199)),
    doc(b'"device_id":"a","x":' + b"[" * 200 + b"]" * 200),
    doc(b'"device_id":"a","x":' + b"[" * 201 + b"]" * 201),
    doc(b'"device_id":"a","x":NaN'),
    doc(b'"device_id":"a","x":[1,{"y":Infinity}]'),
    doc(b'"device_id":"a","x":"\xff"'),
    doc(b'"device_id":"a","\xff":1'),
    doc(b'"device_id":"a","x":"\xed\xa0\x80"'),
    doc(b'"device_id":"a","x":"\\ud800"'),
    doc(b'"device_id":"a","x":"\\uDE00"'),
    doc(b'"device_id":"a","x":"\\uD83D\\uDE00"'),
    doc(b'"device_id":"a","x":"\\q"'),
    doc(b'"device_id":"a","x":"\x01"'),
    doc(b'"device_id":"a","x":"\x7f"'),
    doc(b'"device_id":"a","x":1e400'),
    doc(b'"device_id":"a","x":' + b"9" * 4300),
    doc(b'"device_id":"a","x":' + b"9" * 4301),
    doc(b'"device_id":"a","x":1.' + b"9" * 4301),
    doc(b'"device_id":"a","x":+1'),
    doc(b'"device_id":"a","x":tru'),
    doc(b'"device_id":"a","readings":[]'),
    doc(b'"device_id":"a","readings":[]', b"") + b"",
    b'{"device_id":"a","readings":[' + R1 + b'],"readings":[]}',
    b'{"device_id":"a","readings":[],"readings":[' + R1 + b"]}",
    b'{"device_id":"a","readings":[' + b",".join([R1] * 10_000) + b"]}",
    b'{"device_id":"a","readings":[' + b",".join([R1] * 10_001) + b"]}",
    b'{"device_id":"a","readings":[' + R1 + b",]}",
    b'{"device_id":"a","readings":' + R1 + b"}",
    b'{"device_id":"a"}',
    b'{"readings":[' + R1 + b"]}",
    b"\xef\xbb\xbf" + doc(),
    b"  \n" + doc() + b" \t\r\n",
    doc() + b"x",
    doc() + doc(),
    b"[]",
    b"null",
    b"{",
    b"\xff\xfe",
    b"",
]


def outcome(fn: Any, raw: bytes, key: bytes | None = None) -> tuple[str, Any]:
    try:
        batch = fn(raw, key, NOW, SKEW)
    except InvalidMessageError as err:
        return ("rejected", (err.reason, err.detail))
    return ("accepted", values(batch))


def values(batch: Any) -> tuple[Any, ...]:
    """Everything the aggregator reads, with the exact type and repr of each number."""
    return (
        batch.device_id,
        tuple(
            (r.metric, type(r.ts), r.ts, type(r.value), repr(r.value), str(r.quality))
            for r in batch.readings
        ),
    )


def check(raw: bytes, key: bytes | None = None) -> None:
    reference = outcome(decode_readings, raw, key)
    assert outcome(decode_readings_fast, raw, key) == reference, raw[:200]
    fast: FastBatch | None = _fast(raw)
    if fast is not None:
        contract = ReadingsBatch.model_validate_json(raw)  # raises if the fast path was laxer
        assert values(fast) == values(contract), raw[:200]


def test_fixed_corpus_has_identical_outcomes() -> None:
    for raw in CORPUS:
        check(raw)


def test_fast_path_really_decodes_ordinary_records() -> None:
    ordinary = [
        doc(),
        doc(readings=reading(extra=b',"quality":"bad"')),
        doc(b'"device_id":"press-07","firmware":"1.2"', b",".join([reading()] * 10)),
    ]
    assert all(_fast(raw) is not None for raw in ordinary)


def test_key_and_future_reasons_are_identical() -> None:
    for key in (None, b"a", b"b", b""):
        check(doc(), key)
    future = str(NOW + SKEW + 1).encode()
    check(doc(readings=reading(ts=future)))
    check(doc(readings=reading(ts=str(NOW + SKEW).encode())))
    check(doc(readings=reading() + b"," + reading(ts=future)))


def test_a_remembered_key_vouches_for_nothing_else() -> None:
    """The fast path remembers key -> device id; a record with that key and another device,
    a bad metric or a bad value still gets the contract's outcome."""
    check(doc(), b"a")  # remembered now
    for raw in (
        doc(b'"device_id":"b"'),
        doc(b'"device_id":"a"', b'{"metric":"bad metric","ts":1,"value":1}'),
        doc(b'"device_id":"a"', reading(value=str(2**70).encode())),
        doc(b'"device_id":"a"', reading(ts=str(NOW + SKEW + 1).encode())),
        doc(b'"device_id":"a\\n"'),
    ):
        check(raw, b"a")
        check(raw, b"b")


# -- hypothesis -------------------------------------------------------------------------------


class Raw:
    """A JSON token written as is (odd number spellings, NaN, ...)."""

    def __init__(self, text: str) -> None:
        self.text = text


class Pairs:
    """A JSON object as a list of pairs, so keys can repeat."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs


def dump(node: Any, ascii_only: bool) -> str:
    if isinstance(node, Raw):
        return node.text
    if isinstance(node, Pairs):
        inner = ",".join(f"{dump(k, ascii_only)}:{dump(v, ascii_only)}" for k, v in node.pairs)
        return "{" + inner + "}"
    if isinstance(node, list):
        return "[" + ",".join(dump(v, ascii_only) for v in node) + "]"
    return json.dumps(node, ensure_ascii=ascii_only, allow_nan=True)


ID_CHARS = "aZ09._:/-\n \u00e9\x00$^"
valid_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:/-]{0,10}\Z")
weird_ids = st.one_of(
    st.sampled_from(["a" * 128, "a" * 129, "", "-x", "x\n"]),
    st.text(alphabet=ID_CHARS, max_size=8),
)
ids = st.one_of(valid_ids, valid_ids, valid_ids, weird_ids)
number_tokens = st.one_of(
    st.from_regex(r"\A-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?\Z"),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1.", ".5", "01", "+1", "-", "1e400"]),
).map(Raw)
scalars = st.one_of(
    number_tokens,
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=6),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(st.tuples(st.text(max_size=4), inner), max_size=3).map(Pairs),
    ),
    max_leaves=8,
)
timestamps = st.one_of(
    st.integers(min_value=NOW - 10**6, max_value=NOW + 10**6),
    st.integers(min_value=-5, max_value=253_402_300_800_005),
    st.integers(min_value=NOW - 10**6, max_value=NOW + 10**6),
    scalars,
)
numbers = st.one_of(number_tokens, st.integers(), st.floats())
qualities = st.sampled_from(["good", "bad", "uncertain", "good", "bad", "GOOD", "", None])


@st.composite
def readings_docs(draw: st.DrawFn) -> bytes:
    """Valid-ish documents: each part is usually right, sometimes subtly or plainly wrong."""

    def obj(fields: dict[str, Any], optional: set[str]) -> Pairs:
        pairs = [(k, v) for k, v in fields.items() if k not in optional or draw(st.booleans())]
        if draw(st.integers(0, 3)) == 0:
            extra = st.sampled_from([*fields, "x", "extra", "x", "extra", "x"])
            pairs.append((draw(extra), draw(json_values)))
        return Pairs(draw(st.permutations(pairs)))

    readings = [
        obj(
            {
                "metric": draw(ids),
                "ts": draw(timestamps),
                "value": draw(st.one_of(numbers, numbers, numbers, scalars)),
                "quality": draw(qualities),
            },
            {"quality"},
        )
        for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3, 0])))
    ]
    body = obj({"device_id": draw(ids), "readings": readings}, set())
    return dump(body, draw(st.booleans())).encode("utf-8", "surrogatepass")


valid_numbers = st.one_of(
    st.from_regex(r"\A-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,2})?\Z").map(Raw),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)

legal_json = st.recursive(
    st.one_of(
        valid_numbers,
        st.floats(),
        st.booleans(),
        st.none(),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=6),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(
            st.tuples(st.text(st.characters(exclude_categories=["Cs"]), max_size=3), inner),
            max_size=3,
        ).map(Pairs),
    ),
    max_leaves=6,
)


@st.composite
def valid_docs(draw: st.DrawFn) -> bytes:
    """Documents the contract accepts, in odd but legal spellings, with unknown fields."""

    def obj(pairs: list[tuple[str, Any]]) -> Pairs:
        names = st.sampled_from(["x", "fw", "unit"])
        extras = draw(st.lists(st.tuples(names, legal_json), max_size=2))
        return Pairs(draw(st.permutations(pairs + extras)))

    readings = []
    for _ in range(draw(st.integers(1, 20))):
        pairs = [
            ("metric", draw(valid_ids)),
            ("ts", draw(st.integers(0, NOW + SKEW))),
            ("value", draw(valid_numbers)),
        ]
        if draw(st.booleans()):
            pairs.append(("quality", draw(st.sampled_from(["good", "bad", "uncertain"]))))
        readings.append(obj(pairs))
    body = obj([("device_id", draw(valid_ids)), ("readings", readings)])
    return dump(body, draw(st.booleans())).encode()


FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(readings_docs())
def test_generated_documents_have_identical_outcomes(raw: bytes) -> None:
    check(raw)


@FUZZ
@given(valid_docs())
def test_valid_documents_are_accepted_by_both(raw: bytes) -> None:
    ReadingsBatch.model_validate_json(raw)
    check(raw)


@FUZZ
@given(readings_docs(), st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=3))))
def test_mutated_documents_have_identical_outcomes(
    raw: bytes, edits: list[tuple[int, bytes]]
) -> None:
    data = bytearray(raw)
    for at, chunk in edits:
        i = at % (len(data) + 1)
        data[i : i + len(chunk) % 2] = chunk
    check(bytes(data))


@FUZZ
@given(
    readings_docs(),
    st.one_of(st.none(), st.sampled_from([b"a", b"dev-1", b""]), st.binary(max_size=6)),
)
def test_keyed_documents_have_identical_outcomes(raw: bytes, key: bytes | None) -> None:
    if key:
        # Let the fast path remember the key with a valid device first, when it can be one.
        check(doc(b'"device_id":' + json.dumps(key.decode("latin-1")).encode()), key)
    check(raw, key)
    check(raw, key)


@FUZZ
@given(st.binary(max_size=64))
def test_garbage_has_identical_outcomes(raw: bytes) -> None:
    check(raw)


def test_values_are_decoded_identically_for_a_typical_fleet() -> None:
    for i in range(200):
        body = {
            "device_id": f"dev-{i:05d}",
            "readings": [
                {"metric": f"m{j}", "ts": NOW - i * 7 - j, "value": i * 0.1 + j}
                for j in range(1 + i % 10)
            ],
        }
        check(orjson.dumps(body), f"dev-{i:05d}".encode())
