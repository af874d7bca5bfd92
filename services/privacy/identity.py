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
from services.intake.policy import PolicyError, Problem
from services.privacy.keystore import Pool

_FIND = "SELECT email_key, subject_id, suppression FROM identities WHERE email_key = ANY($1)"
_ADD = """
INSERT INTO identities (email_key, subject_id)
SELECT * FROM unnest($1::bytea[], $2::text[]) ON CONFLICT DO NOTHING
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

    def key(self, email: str) -> bytes:
        return hmac.new(self._secret, normalise(email).encode(), hashlib.sha256).digest()

    async def resolve(self, submissions: Sequence[AnySubmission]) -> list[AnySubmission]:
        """The submissions with every person named by subject id (found or minted by e-mail);
        every address seen is indexed. Raises :class:`PolicyError` for a suppressed address
        registered under another subject id without explicit consent."""
        keys = {
            i: self.key(str(s.personal.email))
            for i, s in enumerate(submissions)
            if s.personal.email is not None
        }
        if not keys:
            return list(submissions)
        known = await self._find(set(keys.values()))
        new: dict[bytes, str] = {}
        for index, key in keys.items():
            if key not in known:
                new.setdefault(key, submissions[index].subject_id or f"sub-{uuid7()}")
        if new:
            await self._pool.execute(_ADD, list(new), list(new.values()))
            known |= await self._find(set(new))  # a concurrent request may have won
        problems, named = [], []
        for index, submission in enumerate(submissions):
            row = known.get(keys[index]) if index in keys else None
            subject = submission.subject_id or (row["subject_id"] if row else None)
            refusal = _refusal(row, subject, submission)
            if refusal is not None:
                problems.append(Problem(index, "personal.email", refusal))
            named.append(submission.model_copy(update={"subject_id": subject}))
        if problems:
            raise PolicyError(problems)
        return named

    async def _find(self, keys: set[bytes]) -> dict[bytes, asyncpg.Record]:
        return {r["email_key"]: r for r in await self._pool.fetch(_FIND, list(keys))}


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
