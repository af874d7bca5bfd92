"""The wire format: canonical bytes, upcasting of old versions, exported schemas."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from events.catalog import EVENT_TYPES
from events.catalogue_doc import catalogue_markdown
from events.codec import (
    DecodeError,
    decode,
    encode,
    export_schemas,
    json_schemas,
    release_upcasters,
)
from events.ids import uuid7
from tests.samples import given_event

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "events" / "schemas"


def test_encoding_is_canonical_and_round_trips() -> None:
    event = given_event()
    data = encode(event)
    assert decode(data) == event
    raw = orjson.loads(data)
    assert list(raw) == sorted(raw), "keys are sorted, so equal events have equal bytes"
    assert raw["occurred_at"].endswith("Z")
    assert raw["recorded_at"].endswith("Z")
    assert raw["personal"] == {"email": "crm-1@example.com", "ip_address": "192.0.2.7"}


def test_an_old_schema_version_is_upcast_before_validation() -> None:
    upcasters = release_upcasters()

    @upcasters.register("consent.given", 0)
    def notice_moved_into_data(raw: dict[str, Any]) -> dict[str, Any]:
        data = {**raw["data"], "notice_version": raw.pop("notice")}
        return {**raw, "data": data}

    current = orjson.loads(encode(given_event()))
    old = {**current, "schema_version": 0, "notice": "2019-05-01"}
    del old["data"]["notice_version"]
    event = decode(orjson.dumps(old), upcasters)
    assert event.schema_version == 2
    assert event.type == "consent.given"
    assert event.data.notice_version == "2019-05-01"


def test_a_version_without_an_upcaster_is_refused_by_name() -> None:
    old = {**orjson.loads(encode(given_event())), "schema_version": 0}
    with pytest.raises(DecodeError, match=r"no upcaster for consent.given version 0"):
        decode(orjson.dumps(old))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"type": "consent.teleported"}', "unknown event type 'consent.teleported'"),
    ],
)
def test_undecodable_bytes_are_refused_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(data)


def test_every_event_type_has_a_schema_for_storage_and_submission() -> None:
    names = set(json_schemas())
    assert names == {f"{tag}.v2{kind}.json" for tag in EVENT_TYPES for kind in ("", ".submission")}
    assert len(names) == 2 * 18
    stored = json_schemas()["consent.given.v2.json"]
    assert {"event_id", "recorded_at", "personal", "sealed"} <= set(stored["properties"])
    submitted = json_schemas()["consent.given.v2.submission.json"]
    assert {"event_id", "sealed"}.isdisjoint(submitted["properties"])


def test_the_schemas_of_earlier_versions_stay_published() -> None:
    """Readers of old logs need the old contract: version 1 (personal data in clear)."""
    assert (SCHEMA_DIR / "consent.given.v1.json").exists()
    assert not (SCHEMA_DIR / "subject.accessed.v1.json").exists()


def test_the_committed_schemas_are_the_generated_ones(tmp_path: Path) -> None:
    """A schema change must be exported (``make schemas``) and reviewed, never silent."""
    for generated in export_schemas(tmp_path):
        committed = SCHEMA_DIR / generated.name
        assert committed.exists(), f"{committed.name} is missing: run `make schemas`"
        assert committed.read_bytes() == generated.read_bytes(), f"{committed.name} is stale"


def test_event_ids_are_time_ordered() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(i.version == 7 for i in ids)
    before = time.time_ns() // 1_000_000
    stamped = uuid7().int >> 80  # the 48-bit Unix millisecond timestamp (RFC 9562)
    assert before <= stamped <= time.time_ns() // 1_000_000 + 5


def test_the_event_catalogue_is_generated_from_the_models() -> None:
    committed = (SCHEMA_DIR.parents[1] / "docs" / "events.md").read_text()
    assert committed == catalogue_markdown(), "docs/events.md is stale: run `make schemas`"
    for tag in EVENT_TYPES:
        assert f"## `{tag}` (v2)" in committed
