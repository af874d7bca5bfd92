"""The hash chain in PostgreSQL: batches of any size and rewound offsets give the chain of the
log's bytes, and the mirror can recompute it: re-encoding a ``ledger_events.payload`` read back
from PostgreSQL gives the exact bytes the ledger wrote to Kafka, whatever text it holds."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.catalog import EVENT_TYPES, AnyEvent
from events.chain import GENESIS, canonical, link
from events.codec import encode
from events.consent import ConsentGiven
from events.identifiers import personal_data_in
from projections.db import create_pool
from projections.records import LedgerRecord
from projections.store import SubscriberStore
from services.config import Settings
from tests.integration.test_store_properties import as_records
from tests.samples import given_event
from tests.strategies import ledger

pytestmark = pytest.mark.integration

#: Any Unicode text PostgreSQL can hold: jsonb refuses U+0000 (see docs/audit.md), and
#: surrogates cannot be UTF-8 at all.
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=60)
#: Short text intake accepts in a clear field: not blank, and no personal data in it.
SHORT = TEXT.filter(lambda t: bool(t.strip()) and personal_data_in(t) is None)


@st.composite
def unicode_events(draw: st.DrawFn) -> AnyEvent:
    base = orjson.loads(encode(given_event(draw(st.sampled_from(["crm-1", "CRM_9.x-1"])))))
    base["source"] = {"system": draw(SHORT), "actor": draw(SHORT)}
    base["personal"] = {"note": draw(TEXT), "user_agent": draw(TEXT)}
    return ConsentGiven.model_validate(base)


async def round_trip(database_url: str, values: list[bytes]) -> list[bytes]:
    pool = await create_pool(database_url, max_size=1)
    try:
        rows: list[Any] = await pool.fetch(
            "SELECT p FROM unnest($1::jsonb[]) WITH ORDINALITY AS t(p, n) ORDER BY n",
            [orjson.loads(v) for v in values],
        )
        return [canonical(row["p"]) for row in rows]
    finally:
        await pool.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=st.lists(unicode_events(), min_size=1, max_size=8))
def test_a_payload_read_back_from_jsonb_re_encodes_to_the_log_bytes(
    settings: Settings, events: list[AnyEvent]
) -> None:
    values = [encode(e) for e in events]
    assert asyncio.run(round_trip(settings.database_url, values)) == values


#: Rights requests left out: the strategy may give two subjects one request id, which intake
#: refuses and the store cannot hold.
WITHOUT_REQUESTS = [t for t in EVENT_TYPES if not t.startswith("request.")]


async def chain_in_batches(
    database_url: str, records: list[LedgerRecord], size: int
) -> list[tuple[int, int, bytes, bytes]]:
    pool = await create_pool(database_url, max_size=2)
    try:
        await pool.execute(
            "TRUNCATE subscribers, ledger_events, projector_offsets, ledger_chain,"
            " ledger_chain_heads"
        )
        store = SubscriberStore(pool, "ledger")
        for start in range(0, len(records), size):
            batch = records[start : start + size]
            await store.apply(batch, {r.partition: r.offset + 1 for r in batch})
        # Rewind the projector: the whole log again must leave the chain as it is.
        await pool.execute("UPDATE projector_offsets SET next_offset = 0")
        await store.apply(records, {r.partition: r.offset + 1 for r in records})
        rows = await pool.fetch(
            'SELECT partition, "offset", prev_hash, hash FROM ledger_chain'
            ' ORDER BY partition, "offset"'
        )
        return [(r["partition"], r["offset"], r["prev_hash"], r["hash"]) for r in rows]
    finally:
        await pool.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(log=ledger(max_size=30, types=WITHOUT_REQUESTS), size=st.integers(1, 12))
def test_the_stored_chain_is_the_chain_of_the_log_bytes_in_any_batches(
    settings: Settings, log: list[AnyEvent], size: int
) -> None:
    records = as_records(log + log[: len(log) // 3])  # a retried append repeats events
    heads: dict[int, bytes] = {}
    expected = []
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        previous = heads.get(r.partition, GENESIS)
        heads[r.partition] = link(previous, r.value)
        expected.append((r.partition, r.offset, previous, heads[r.partition]))
    assert asyncio.run(chain_in_batches(settings.database_url, records, size)) == expected
