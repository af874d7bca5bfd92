"""How the reference audience consumer reads a feed record's value and version header."""

from __future__ import annotations

import pytest
from aiokafka.structs import ConsumerRecord

from tests.samples import feed_entry
from tools.audience.main import decode


def record(value: bytes | None, headers: list[tuple[str, bytes]]) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        "consent.feed.v1", 2, 40, 0, 0, b"s-1", value, None, 3, len(value or b""), headers
    )


def test_an_entry_brings_its_own_version_and_a_tombstone_its_header() -> None:
    entry = feed_entry("s-1", version=7)
    read = decode(record(entry.model_dump_json().encode(), [("version", b"7")]))
    assert (read.subject_id, read.entry, read.version) == ("s-1", entry, 7)
    tombstone = decode(record(None, [("version", b"8")]))
    assert (tombstone.entry, tombstone.version) == (None, 8)
    assert decode(record(None, [])).version is None  # published before the header existed


def test_a_malformed_version_header_is_a_record_it_cannot_read() -> None:
    with pytest.raises(ValueError, match=r"version header: b'8a' at consent.feed.v1\[2\]@40"):
        decode(record(None, [("version", b"8a")]))
