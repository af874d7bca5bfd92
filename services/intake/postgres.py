"""The admission's unit of work in PostgreSQL.

``identities`` maps each address key (:class:`~services.privacy.identity.IdentityIndex`) to the
address's first subject id, with the suppression list on the same rows; ``address_holders``
keeps every subject an address was attached to. A batch reads and writes both, its rights
requests and its idempotency claim inside one transaction, under advisory locks on the batch's
addresses and subjects, and commits before it appends: two batches that touch one address are
decided one after the other, each seeing what the other committed. A refused batch rolls back,
so it leaves no row behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from events.catalog import AnySubmission
from projections.db import Conn
from projections.queries import read_requests
from services.intake.idempotency import IdempotencyStore
from services.intake.policy import KnownRequest, KnownRequests, requested_ids
from services.intake.ports import Claim, Deadlock
from services.privacy.suppression import AddressBook, Why, read_book

#: Advisory locks in one order (a subquery sorts them before they are taken), so that two
#: batches wanting overlapping sets queue instead of deadlocking.
_LOCK = """
SELECT pg_advisory_xact_lock(id) FROM (SELECT DISTINCT id FROM unnest($1::bigint[]) AS id
ORDER BY id) AS wanted
"""
_OWNERS = "SELECT email_key, subject_id, suppression FROM identities WHERE email_key = ANY($1)"
_HOLDERS = """
SELECT email_key, subject_id FROM address_holders
WHERE email_key = ANY($1) OR email_key IN (
    SELECT email_key FROM address_holders WHERE subject_id = ANY($2::text[]))
"""
_ADD_OWNERS = """
INSERT INTO identities (email_key, subject_id)
SELECT * FROM unnest($1::bytea[], $2::text[]) ON CONFLICT DO NOTHING
"""
_ADD_HOLDERS = """
INSERT INTO address_holders (email_key, subject_id)
SELECT * FROM unnest($1::bytea[], $2::text[]) ON CONFLICT DO NOTHING
"""
_MARK = """
UPDATE identities AS i SET suppressed_at = now(), suppression = m.why, suppressed_by = m.cause
FROM unnest($1::bytea[], $2::text[], $3::uuid[]) AS m(email_key, why, cause)
WHERE i.email_key = m.email_key AND i.suppression IS NULL
"""
#: Marks whose event never reached the log (the append failed) are taken back.
_UNMARK = """
UPDATE identities SET suppressed_at = NULL, suppression = NULL, suppressed_by = NULL
WHERE suppressed_by = ANY($1::uuid[])
"""


def _lock_id(value: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), "big", signed=True)


class PostgresAdmission:
    """Admission's transactions on a pool; idempotency claims join them."""

    def __init__(self, pool: asyncpg.Pool[Any], claims: IdempotencyStore) -> None:
        self._pool = pool
        self._claims = claims

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[PostgresBatch]:
        """A batch whose connection and transaction are taken at its first statement: a batch
        that needs none (no address, no request, no idempotency key) costs no round trip."""
        try:
            async with AsyncExitStack() as stack:
                yield PostgresBatch(self._pool, self._claims, stack)
        except asyncpg.DeadlockDetectedError as exc:
            raise Deadlock(str(exc)) from exc

    async def unmark(self, event_ids: Iterable[UUID]) -> None:
        await self._pool.execute(_UNMARK, list(event_ids))


class PostgresBatch:
    """One batch's transaction on one connection, opened on first use."""

    def __init__(
        self, pool: asyncpg.Pool[Any], claims: IdempotencyStore, stack: AsyncExitStack
    ) -> None:
        self._pool = pool
        self._claims = claims
        self._stack = stack
        self._open: Conn | None = None
        self._locked: set[int] = set()

    async def _conn(self) -> Conn:
        if self._open is None:
            conn = await self._stack.enter_async_context(self._pool.acquire())
            await self._stack.enter_async_context(conn.transaction())
            self._open = conn
        return self._open

    async def book(
        self, submissions: Sequence[AnySubmission], keys: Mapping[int, bytes]
    ) -> AddressBook:
        return await read_book(self, submissions, keys)

    async def lock(self, keys: set[bytes], subjects: set[str]) -> None:
        """Advisory locks held to the transaction's end; each taken once."""
        ids = {_lock_id(k) for k in keys} | {_lock_id(s.encode()) for s in subjects}
        if ids - self._locked:
            await (await self._conn()).execute(_LOCK, sorted(ids - self._locked))
            self._locked |= ids

    async def owners(self, keys: set[bytes]) -> list[tuple[bytes, str, Why | None]]:
        rows = await (await self._conn()).fetch(_OWNERS, list(keys))
        return [(r["email_key"], r["subject_id"], r["suppression"]) for r in rows]

    async def holders(self, keys: set[bytes], subjects: set[str]) -> list[tuple[bytes, str]]:
        rows = await (await self._conn()).fetch(_HOLDERS, list(keys), list(subjects))
        return [(r["email_key"], r["subject_id"]) for r in rows]

    async def known_requests(self, submissions: Sequence[AnySubmission]) -> KnownRequests:
        """As the projection holds them (the projector writes ``rights_requests``)."""
        ids = requested_ids(submissions)
        rows = await read_requests(await self._conn(), request_ids=ids) if ids else []
        return KnownRequests(
            KnownRequest(
                r["request_id"],
                r["subject_id"],
                r["received_at"],
                answered=r["answered_at"] is not None,
                extended=r["extended_due_on"] is not None,
            )
            for r in rows
        )

    async def claim(
        self, key: str, digest: bytes, event_ids: list[UUID], recorded_at: datetime
    ) -> Claim:
        return await self._claims.claim(key, digest, event_ids, recorded_at, await self._conn())

    async def record(self, book: AddressBook, event_ids: Sequence[UUID]) -> None:
        if not (book.new_owners or book.new_holders or book.marks):
            return
        conn = await self._conn()
        if book.new_owners:
            await conn.execute(_ADD_OWNERS, list(book.new_owners), list(book.new_owners.values()))
        if book.new_holders:
            pairs = sorted(book.new_holders)
            await conn.execute(_ADD_HOLDERS, [k for k, _ in pairs], [s for _, s in pairs])
        if book.marks:
            await conn.execute(
                _MARK,
                [m.key for m in book.marks],
                [m.why for m in book.marks],
                [event_ids[m.cause] for m in book.marks],
            )
