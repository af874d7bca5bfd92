"""The keyed identity index: producers may name a person by e-mail address, yet no address is
stored in clear anywhere in it.

``identities`` maps HMAC-SHA-256(server secret, normalised address) to the address's first
subject id, with the suppression list on the same rows; ``address_holders`` keeps every subject
an address was attached to. Intake reads and writes both inside one PostgreSQL transaction per
batch, under advisory locks on the batch's addresses and subjects, and commits before it
appends: two batches that touch one address are decided one after the other, each seeing what
the other committed (:mod:`services.privacy.suppression` holds the rule). A refused batch rolls
back, so it leaves no row behind.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from uuid import UUID

from events.catalog import AnySubmission
from projections.db import Conn
from services.privacy.keystore import Pool
from services.privacy.suppression import AddressBook, load, why

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


def normalise(email: str) -> str:
    """One spelling per mailbox: surrounding blanks removed, case folded (mail providers treat
    the local part case-insensitively in practice, and a miss here would defeat suppression)."""
    return email.strip().casefold()


def _lock_id(value: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), "big", signed=True)


class IdentityIndex:
    """The PostgreSQL side of naming people by address and of the suppression list."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def key(self, email: str) -> bytes:
        return hmac.new(self._secret, normalise(email).encode(), hashlib.sha256).digest()

    def keys(self, submissions: Sequence[AnySubmission]) -> dict[int, bytes]:
        """Each submission's address key, by item, for the items that carry an address."""
        return {
            i: self.key(str(s.personal.email))
            for i, s in enumerate(submissions)
            if s.personal.email is not None
        }

    async def book(
        self, conn: Conn, submissions: Sequence[AnySubmission], keys: Mapping[int, bytes]
    ) -> AddressBook:
        """Lock and read what the ledger committed about the batch's addresses, and about every
        address of each subject that the batch's objections and erasures suppress."""
        named = {s.subject_id for s in submissions if s.subject_id is not None}
        wanted = set(keys.values())
        locked: set[int] = set()
        while True:
            ids = {_lock_id(k) for k in wanted} | {_lock_id(s.encode()) for s in named}
            if ids - locked:
                await conn.execute(_LOCK, sorted(ids - locked))
                locked |= ids
            owners = await conn.fetch(_OWNERS, list(wanted))
            first = {row["email_key"]: row["subject_id"] for row in owners}
            suppressors = [
                s.subject_id or first.get(keys.get(i, b""))
                for i, s in enumerate(submissions)
                if why(s) is not None
            ]
            holders = await conn.fetch(_HOLDERS, list(wanted), [s for s in suppressors if s])
            more = {row["email_key"] for row in holders} - wanted
            if not more:
                return load(
                    ((r["email_key"], r["subject_id"], r["suppression"]) for r in owners),
                    ((r["email_key"], r["subject_id"]) for r in holders),
                )
            wanted |= more

    async def record(self, conn: Conn, book: AddressBook, event_ids: Sequence[UUID]) -> None:
        """Write what the accepted items added: new addresses, holders and suppressions (each
        mark names the event that suppressed, ``event_ids`` being the drafts' ids)."""
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

    @staticmethod
    async def unmark(pool: Pool, event_ids: Iterable[UUID]) -> None:
        """Take back the suppressions of events that were not appended after all."""
        await pool.execute(_UNMARK, list(event_ids))
