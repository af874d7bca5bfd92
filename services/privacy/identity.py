"""The keyed identity index: producers may name a person by e-mail address, yet no address is
stored in clear anywhere in it.

The index maps HMAC-SHA-256(server secret, normalised address) to the subject id. Its rows
outlive erasure as the suppression list: the projector marks the rows of an erased or objecting
person, and a registration of such an address under another subject id (a CRM re-import of a
new contact record) is refused; only an explicit consent can subscribe the address again.
Under the same subject id the fold already keeps such a person ineligible.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import asyncpg

from events.catalog import AnySubmission
from events.consent import ConsentGivenIn
from events.ids import uuid7
from services.coalescer import Coalescer
from services.intake.policy import PolicyError, Problem
from services.privacy.keystore import Pool

_FIND = "SELECT email_key, subject_id, suppression FROM identities WHERE email_key = ANY($1)"
#: Index the addresses not indexed yet (with the proposed subject ids) and return every row,
#: in one statement. Both parts see the statement's snapshot, so a row that a concurrent
#: request added after it began is in neither: :meth:`IdentityIndex._index` reads it after.
_INDEX = """
WITH wanted AS (SELECT * FROM unnest($1::bytea[], $2::text[]) AS w(email_key, subject_id)),
added AS (
    INSERT INTO identities (email_key, subject_id) SELECT email_key, subject_id FROM wanted
    ON CONFLICT DO NOTHING RETURNING email_key, subject_id, suppression
)
SELECT email_key, subject_id, suppression FROM added
UNION ALL
SELECT i.email_key, i.subject_id, i.suppression FROM identities AS i JOIN wanted USING (email_key)
"""


def normalise(email: str) -> str:
    """One spelling per mailbox: surrounding blanks removed, case folded (mail providers treat
    the local part case-insensitively in practice, and a miss here would defeat suppression)."""
    return email.strip().casefold()


def subscribes_without_consent(submission: AnySubmission) -> bool:
    """Would this make a person eligible with no explicit consent (a registration under
    legitimate interest, as a CRM import records)?"""
    return isinstance(submission, ConsentGivenIn) and submission.data.legal_basis != "consent"


class IdentityIndex:
    def __init__(self, pool: Pool, secret: bytes) -> None:
        self._pool = pool
        self._secret = secret
        self._rows: Coalescer[bytes, str, asyncpg.Record] = Coalescer(self._index)

    def key(self, email: str) -> bytes:
        return hmac.new(self._secret, normalise(email).encode(), hashlib.sha256).digest()

    async def resolve(self, submissions: Sequence[AnySubmission]) -> list[AnySubmission]:
        """The submissions with every person named by subject id (found or minted by e-mail);
        every address seen is indexed. Raises :class:`PolicyError` for a suppressed address
        registered under another subject id without explicit consent."""
        named, problems = await self.name(submissions)
        if problems:
            raise PolicyError(problems)
        return named

    async def name(
        self, submissions: Sequence[AnySubmission]
    ) -> tuple[list[AnySubmission], list[Problem]]:
        """As :meth:`resolve`, but the refused items are returned as problems (by item), for a
        caller that refuses them one by one (the Kafka intake topic)."""
        keys = {
            i: self.key(str(s.personal.email))
            for i, s in enumerate(submissions)
            if s.personal.email is not None
        }
        if not keys:
            return list(submissions), []
        proposed: dict[bytes, str] = {}  # the subject id an address gets if it is new
        for index, key in keys.items():
            proposed.setdefault(key, submissions[index].subject_id or f"sub-{uuid7()}")
        known = await self._rows.get(proposed)
        problems, named = [], []
        for index, submission in enumerate(submissions):
            row = known.get(keys[index]) if index in keys else None
            subject = submission.subject_id or (row["subject_id"] if row else None)
            refusal = _refusal(row, subject, submission)
            if refusal is not None:
                problems.append(Problem(index, "personal.email", refusal))
            named.append(submission.model_copy(update={"subject_id": subject}))
        return named, problems

    async def _index(self, proposed: dict[bytes, str]) -> dict[bytes, asyncpg.Record]:
        """Every address's row, indexing the new ones: one statement for all the concurrent
        requests (see :class:`~services.coalescer.Coalescer`)."""
        rows = await self._pool.fetch(_INDEX, list(proposed), list(proposed.values()))
        found = {r["email_key"]: r for r in rows}
        if missed := [key for key in proposed if key not in found]:  # a concurrent insert won
            found |= {r["email_key"]: r for r in await self._pool.fetch(_FIND, missed)}
        return found


def _refusal(
    row: asyncpg.Record | None, subject_id: str | None, submission: AnySubmission
) -> str | None:
    """Why a registration of a suppressed address under another subject id is refused."""
    if row is None or row["suppression"] is None or row["subject_id"] == subject_id:
        return None
    if not subscribes_without_consent(submission):
        return None
    why = "was erased" if row["suppression"] == "erased" else "objected"
    return (
        f"this address is on the suppression list (its person {why}); a registration under "
        "another subject id cannot subscribe it again, only an explicit consent "
        "(consent.given with legal_basis consent, or a confirmed double opt-in) can"
    )
