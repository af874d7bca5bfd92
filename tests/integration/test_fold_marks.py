"""The marks of the order-independent fold in PostgreSQL: rows written before them, and requests
whose lifecycle events were folded before their receipt."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from events.catalog import AnyEvent
from events.codec import encode
from events.ids import uuid7
from projections.db import create_pool
from projections.migrations import apply, migration_files
from projections.queries import read_requests
from projections.records import LedgerRecord
from projections.rows import requests_to_json, state_from_row
from projections.state import Mark, SubjectState, fold
from projections.store import LOAD_SUBJECTS, SubscriberStore
from services.config import Settings
from tests.samples import REQUEST_ID, recorded_event

pytestmark = pytest.mark.integration

T = datetime(2024, 11, 10, 12, tzinfo=UTC)
DAY = timedelta(days=1)
OLD_REQUEST = {
    "request_id": REQUEST_ID,
    "right": "access",
    "channel": "letter",
    "written": True,
    "signed": True,
    "received_by": "dpo",
    "received_at": T.isoformat(),
    "due_on": "2024-12-10",
    "status": "extended",
    "last_event_id": str(uuid7()),
    "identity_verified_at": None,
    "extended_due_on": "2025-02-10",
    "answered_at": None,
    "outcome": None,
    "reasons": "archives",
}


async def fresh_database(base: Settings) -> str:
    name = f"t_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(base.database_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base.database_url.rsplit("/", 1)[0] + "/" + name


async def test_rows_written_before_the_marks_keep_their_answers(stack_settings: Settings) -> None:
    url = await fresh_database(stack_settings)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz)"
        )
        for name, sql in migration_files():
            if name < "008":
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
        erasure, typed_in_late = uuid7(), uuid7()  # the second occurred before the first
        for offset, (event_id, at) in enumerate([(erasure, T), (typed_in_late, T - DAY)]):
            await conn.execute(
                "INSERT INTO ledger_events VALUES ($1, 'ledger', 0, $2, 'crm-2', 'subject.erased',"
                " 2, NULL, $3, $3, '{}')",
                event_id,
                offset,
                at,
            )
        insert = (
            "INSERT INTO subscribers (subject_id, email, purposes, version, last_event_id,"
            " updated_at, restricted_since, erasure, requests)"
            " VALUES ($1, $2, '{}', 3, $3, $4, $5, $6::text::jsonb, $7::text::jsonb)"
        )
        mark = orjson.dumps(Mark(T, erasure, kind="erased")).decode()  # the latest occurred
        requests = orjson.dumps({REQUEST_ID: OLD_REQUEST}).decode()
        await conn.execute(insert, "crm-1", "a@example.fi", uuid7(), T, T, None, requests)
        await conn.execute(insert, "crm-2", None, erasure, T, None, mark, "{}")
    finally:
        await conn.close()
    assert (await apply(url))[0] == "008_order_independent_marks.sql"
    pool = await create_pool(url)
    try:
        rows = {r["subject_id"]: r for r in await pool.fetch(LOAD_SUBJECTS, ["crm-1", "crm-2"])}
    finally:
        await pool.close()
    restricted, erased = state_from_row(rows["crm-1"]), state_from_row(rows["crm-2"])
    assert restricted.email == "a@example.fi"
    assert restricted.restricted_since == T
    request = restricted.requests[uuid.UUID(REQUEST_ID)]
    assert (request.status, request.reasons) == ("extended", "archives")
    assert request.extended_due_on == date(2025, 2, 10)
    assert erased.email is None
    assert erased.restricted_since is None
    assert erased.erasure is not None
    assert erased.erasure.latest.event_id == erasure
    assert erased.erasure.recorded_last == typed_in_late


def records(events: list[AnyEvent], start: int) -> list[LedgerRecord]:
    return [
        LedgerRecord(0, start + i, e, e.schema_version, encode(e)) for i, e in enumerate(events)
    ]


async def test_a_request_is_written_once_its_receipt_is_folded(pool: asyncpg.Pool[Any]) -> None:
    verified = recorded_event("request.identity_verified", minutes=10)
    answered = recorded_event("request.fulfilled", minutes=20)
    received = recorded_event("request.received", minutes=0)
    store = SubscriberStore(pool, "ledger")
    await store.apply(records([verified, answered], 0), {0: 2})
    assert await read_requests(pool) == []
    kept = await pool.fetch("SELECT status, received_at FROM rights_requests")
    assert [tuple(r) for r in kept] == [("fulfilled", None)]
    await store.apply(records([received], 2), {0: 3})
    (request,) = await read_requests(pool)
    assert request["status"] == "fulfilled"
    assert request["received_at"] == received.occurred_at
    assert request["identity_verified_at"] == verified.occurred_at
    assert request["last_event_id"] == answered.event_id


async def migrated_up_to(url: str, last: str) -> None:
    """The schema as migrations up to ``last`` (included) left it, recorded as applied."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz)"
        )
        for name, sql in migration_files():
            if name[:3] <= last:
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
    finally:
        await conn.close()


async def write_old_shape(url: str, states: list[SubjectState], legacy: dict[str, Any]) -> None:
    """The rows the projector wrote before migration 011: every request in the subscriber's
    ``requests`` column, the received ones in ``rights_requests`` too, without marks; and a
    request of a row written before the marks (``legacy``, subject crm-3)."""
    subscriber = (
        "INSERT INTO subscribers (subject_id, purposes, version, last_event_id, updated_at,"
        " requests) VALUES ($1, '{}', $2, $3, $4, $5::text::jsonb)"
    )
    request = (
        "INSERT INTO rights_requests SELECT * FROM"
        " jsonb_populate_record(NULL::rights_requests, $1::text::jsonb || jsonb_build_object("
        " 'subject_id', $2::text))"
    )
    conn = await asyncpg.connect(url)
    try:
        for s in states:
            column = requests_to_json(s)
            await conn.execute(
                subscriber, s.subject_id, s.version, s.last_event_id, s.updated_at,
                orjson.dumps(column).decode(),
            )  # fmt: skip
            for r in column.values():
                if r["right"] is not None:
                    await conn.execute(request, orjson.dumps(r).decode(), s.subject_id)
        await conn.execute(
            subscriber, "crm-3", 1, uuid7(), T, orjson.dumps({REQUEST_ID: legacy}).decode()
        )
        await conn.execute(request, orjson.dumps(legacy).decode(), "crm-3")
    finally:
        await conn.close()


async def test_requests_stored_twice_are_stored_once_after_migration_011(
    stack_settings: Settings,
) -> None:
    """crm-1's request was received and verified; crm-2's was answered before its receipt was
    folded (in the JSON column only); crm-3's was written before the marks."""
    received = recorded_event("request.received", minutes=0)
    verified = recorded_event("request.identity_verified", minutes=10)
    answered = recorded_event("request.fulfilled", "crm-2", minutes=20)
    folded = fold([received, verified, answered])
    url = await fresh_database(stack_settings)
    await migrated_up_to(url, "010")
    await write_old_shape(url, list(folded.values()), OLD_REQUEST)
    before = await read_requests_at(url)

    assert await apply(url) == ["011_requests_stored_once.sql"]
    pool = await create_pool(url)
    try:
        columns = await pool.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'subscribers' AND column_name = 'requests'"
        )
        assert columns == []
        assert [dict(r) for r in await read_requests(pool)] == before  # crm-1, crm-3
        loaded = {
            r["subject_id"]: state_from_row(r)
            for r in await pool.fetch(LOAD_SUBJECTS, ["crm-1", "crm-2", "crm-3"])
        }
        assert loaded["crm-1"].requests == folded["crm-1"].requests
        assert loaded["crm-2"].requests == folded["crm-2"].requests
        legacy = loaded["crm-3"].requests[uuid.UUID(REQUEST_ID)]
        assert (legacy.status, legacy.extended_due_on) == ("extended", date(2025, 2, 10))

        late = recorded_event("request.received", "crm-2", minutes=5)
        await SubscriberStore(pool, "ledger").apply(records([late], 0), {0: 1})
        shown = {(r["subject_id"], r["status"]) for r in await read_requests(pool)}
        assert shown == {("crm-1", "open"), ("crm-2", "fulfilled"), ("crm-3", "extended")}
    finally:
        await pool.close()


async def read_requests_at(url: str) -> list[dict[str, Any]]:
    pool = await create_pool(url)
    try:
        return [dict(r) for r in await read_requests(pool)]
    finally:
        await pool.close()
