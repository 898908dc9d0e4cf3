"""Kafka record batches (format v2) of records encoded ahead of their append.

aiokafka's record builder encodes each record whole at its append: key, value and every header
(each header name encoded to UTF-8 twice, once to size it and once to write it). With a window
record's eight CloudEvents headers that was most of a boundary's append. Here a record's part
after its offset delta (key, value, headers: :func:`encoded_record`) is encoded when the window
record is made, ahead of the close for a sealed window, and the append only writes the record's
length, attributes, timestamp delta and offset delta in front of it, a batch's records in one
call (:meth:`RecordBatchBuilder.append_all`): about half the cost of an append through
aiokafka's builder (docs/decisions/0004-hot-path-decoder.md, "Sending").

This module is the Kafka format alone. ``internals.EncodedBatch`` wraps a
:class:`RecordBatchBuilder` in aiokafka's ``BatchBuilder``, so ``AIOKafkaProducer.send_batch()``
takes it as it takes its own: the producer sets the idempotent producer's state and builds the
batch (header, compression, CRC-32C) when it sends it. ``tests/unit/test_record_batch.py`` holds
the batches to the bytes aiokafka's own builder makes of the same records.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from services.telemetry.kafka.internals import COMPRESS, calc_crc32c

Headers = Sequence[tuple[str, bytes | None]]

# The batch header: base offset, length, partition leader epoch, magic, CRC, attributes, last
# offset delta, first and max timestamp, producer id and epoch, base sequence, record count.
_HEADER = struct.Struct(">qiibIhiqqqhii")
_LENGTH_FROM = 12  # the length counts from the partition leader epoch on
_CRC_AT = 17
_CRC_FROM = 21  # the CRC covers the attributes and everything after them
_TRANSACTIONAL = 0x10
# Compression codecs by the name the settings use (``kafka_compression``).
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def varint(n: int) -> bytes:
    """``n`` as Kafka's zigzag varint (varlong for the 64-bit fields)."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


# Lengths, offset deltas and timestamp deltas are nearly always small: their encodings, made once.
_TABLE = 4096
_VARINTS = tuple(varint(n) for n in range(_TABLE))
_NO_BYTES = varint(-1)


def varint_of(n: int) -> bytes:
    """:func:`varint` of a length or delta, from the table when it is small (nearly always)."""
    return _VARINTS[n] if 0 <= n < _TABLE else varint(n)


def length_prefixed(data: bytes | None) -> bytes:
    """``data`` as a record writes a key, value or header: its length, then its bytes."""
    return _NO_BYTES if data is None else varint_of(len(data)) + data


def encoded_record(key: bytes | None, value: bytes | None, headers: Headers) -> bytes:
    """The part of a v2 record after its offset delta: key, value and headers, as a record
    builder writes them (header names in UTF-8)."""
    parts = [length_prefixed(key), length_prefixed(value), varint(len(headers))]
    for name, data in headers:
        parts += (length_prefixed(name.encode()), length_prefixed(data))
    return b"".join(parts)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    z = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        z |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return (z >> 1) ^ -(z & 1), pos


def decoded_record(
    record: bytes,
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]:
    """(key, value, headers) of an :func:`encoded_record` (for inspection and tests)."""

    def field(pos: int) -> tuple[bytes | None, int]:
        n, pos = _read_varint(record, pos)
        return (None, pos) if n < 0 else (record[pos : pos + n], pos + n)

    key, pos = field(0)
    value, pos = field(pos)
    count, pos = _read_varint(record, pos)
    headers: list[tuple[str, bytes | None]] = []
    for _ in range(count):
        name, pos = field(pos)
        data, pos = field(pos)
        headers.append(((name or b"").decode(), data))
    if pos != len(record):
        raise ValueError("trailing bytes after the record's headers")
    return key, value, headers


class RecordBatchBuilder:
    """One v2 record batch of records encoded by :func:`encoded_record` (the shape of aiokafka's
    ``DefaultRecordBatchBuilder``, which the producer's sender builds through)."""

    def __init__(self, compression_type: int, batch_size: int, *, is_transactional: bool = False):
        self._codec = compression_type & 0x07
        self._batch_size = batch_size
        self._transactional = is_transactional
        self.producer_id, self.producer_epoch, self.base_sequence = -1, -1, 0
        self._buffer = bytearray(_HEADER.size)
        self._first_timestamp = self._max_timestamp = -1
        self._last_offset = self._count = 0
        # Whether every record so far was appended with the first one's timestamp.
        self._one_timestamp = True
        # After compress_ahead(): no more appends, and the records compressed (with a codec).
        self._final = False
        self._compressed: bytes | None = None

    def append(self, offset: int, timestamp: int, record: bytes) -> int:
        """Append ``record`` (:func:`encoded_record`) at ``offset`` (relative to the batch) with
        ``timestamp`` (ms); its size in bytes, or 0 when the batch is full (the first record is
        always taken)."""
        before = len(self._buffer)
        if not self.append_all(offset, timestamp, [record]):
            return 0
        return len(self._buffer) - before

    def append_record(
        self, offset: int, timestamp: int, key: bytes | None, value: bytes | None, headers: Headers
    ) -> int:
        """:meth:`append` of a record not encoded ahead (the producer's own ``send()``)."""
        return self.append(offset, timestamp, encoded_record(key, value, headers))

    def append_all(
        self, offset: int, timestamp: int, records: Sequence[bytes], start: int = 0
    ) -> int:
        """Append ``records[start:]`` from ``offset`` on, all with ``timestamp``, until the batch
        is full; how many it took (the first record of a batch always fits). One call per
        batch: this is the append of a boundary's every window."""
        if self._final:
            return 0
        first = self._first_timestamp
        if first < 0:
            first = self._first_timestamp = self._max_timestamp = timestamp
        elif timestamp != first:
            self._one_timestamp = False
        ts_delta = varint_of(timestamp - first)
        # varint_of() written out below: this loop runs once per record.
        small, table, buffer, limit = _VARINTS, _TABLE, self._buffer, self._batch_size
        used, end, i = len(buffer), len(records), start
        while i < end:
            record = records[i]
            # attributes (0), timestamp delta, offset delta, then the record encoded ahead
            head = b"\x00" + ts_delta + (small[offset] if offset < table else varint(offset))
            body = len(head) + len(record)
            length = small[body] if body < table else varint(body)
            used += len(length) + body
            if offset and used >= limit:
                break
            buffer += length
            buffer += head
            buffer += record
            offset += 1
            i += 1
        taken = i - start
        if taken:
            self._last_offset = offset - 1
            self._count += taken
            if timestamp > self._max_timestamp:  # noqa: PLR1730
                self._max_timestamp = timestamp
        return taken

    def compress_ahead(self) -> None:
        """Compress the records now instead of at :meth:`build` (a batch prepared ahead of its
        sending, so that its compression is not part of the send); no record is taken after
        this. Nothing compressed depends on the batch's timestamps or producer state."""
        if self._codec and not self._final:
            self._compressed = COMPRESS[self._codec](bytes(self._buffer[_HEADER.size :]))
        self._final = True

    def restamp(self, timestamp: int) -> None:
        """Move every record to ``timestamp``: for a batch prepared ahead, whose records were
        all appended with one timestamp (their deltas are 0), stamped when it is sent."""
        if not self._one_timestamp:
            raise ValueError("the batch's records have timestamps of their own")
        self._first_timestamp = self._max_timestamp = timestamp

    def set_producer_state(self, producer_id: int, producer_epoch: int, base_sequence: int) -> None:
        self.producer_id, self.producer_epoch = producer_id, producer_epoch
        self.base_sequence = base_sequence

    def size(self) -> int:
        return len(self._buffer)

    def build(self) -> bytearray:
        """The batch's bytes: records compressed with the codec, the header, the CRC."""
        buffer = self._buffer
        attributes = _TRANSACTIONAL if self._transactional else 0
        if self._codec:
            compressed = self._compressed
            if compressed is None:
                compressed = COMPRESS[self._codec](bytes(buffer[_HEADER.size :]))
            del buffer[_HEADER.size :]
            buffer += compressed
            attributes |= self._codec
        _HEADER.pack_into(
            buffer,
            0,
            0,  # the base offset, set by the broker
            len(buffer) - _LENGTH_FROM,
            -1,  # the partition leader epoch, set by the broker
            2,  # magic
            0,  # the CRC, below
            attributes,
            self._last_offset,
            self._first_timestamp,
            self._max_timestamp,
            self.producer_id,
            self.producer_epoch,
            self.base_sequence,
            self._count,
        )
        struct.pack_into(">I", buffer, _CRC_AT, calc_crc32c(memoryview(buffer)[_CRC_FROM:]))
        return buffer
