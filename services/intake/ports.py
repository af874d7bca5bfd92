"""The write path's ports: the state intake reads and writes, as small protocols.

The service layer (:mod:`services.intake.admission`, :mod:`services.intake.service`) depends
on these alone, so it imports neither asyncpg nor aiokafka and runs unchanged on the
PostgreSQL/Kafka adapters (:mod:`services.intake.postgres`, :class:`~services.messaging.
appender.Appender`, :class:`~services.privacy.keystore.KeyStore`) or on the in-memory ones
(:mod:`services.intake.memory`). ``tests/contract`` holds the one suite both must pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol
from uuid import UUID

from events.catalog import AnySubmission
from events.sealing import DataKey
from services.intake.policy import KnownRequests
from services.messaging.records import OutRecord, Receipt
from services.privacy.suppression import AddressBook

#: How long a claim protects a request in flight before a retry may take it over.
CLAIM_LEASE_S = 60.0

Outcome = Literal["new", "replay", "in_progress", "mismatch"]


@dataclass(frozen=True, slots=True)
class Claim:
    """The result of claiming an idempotency key: what the request should do next."""

    outcome: Outcome
    event_ids: list[UUID]
    recorded_at: datetime | None = None
    response: dict[str, Any] | None = None


class Deadlock(Exception):  # noqa: N818 - named for what happened, as the backends name it
    """The backend aborted a batch's transaction to break a deadlock: decide the batch again."""


class AdmissionBatch(Protocol):
    """One batch's transaction: what admission reads and writes between deciding and
    appending. Nothing it writes is seen by others before the transaction commits."""

    async def book(
        self, submissions: Sequence[AnySubmission], keys: Mapping[int, bytes]
    ) -> AddressBook:
        """Lock and read the batch's addresses, and every address of each subject the
        batch's objections and erasures suppress; a later batch touching them waits."""
        ...

    async def known_requests(self, submissions: Sequence[AnySubmission]) -> KnownRequests:
        """The rights requests the batch's request events name, as the ledger knows them."""
        ...

    async def claim(
        self, key: str, digest: bytes, event_ids: list[UUID], recorded_at: datetime
    ) -> Claim:
        """Claim an idempotency key for a request with these planned ids and time."""
        ...

    async def record(self, book: AddressBook, event_ids: Sequence[UUID]) -> None:
        """Write what the accepted items added: owners, holders, suppression marks (each
        naming its event, ``event_ids`` being the drafts' ids)."""
        ...


class AdmissionUnitOfWork(Protocol):
    """The admission's transactions over the address book, requests and idempotency claims."""

    def begin(self) -> AbstractAsyncContextManager[AdmissionBatch]:
        """A transaction: committed when the block ends, rolled back when it raises (a
        refused batch leaves nothing). May raise :class:`Deadlock`."""
        ...

    async def unmark(self, event_ids: Iterable[UUID]) -> None:
        """Take back the suppression marks of events that were not appended after all."""
        ...


class IdempotencyKeys(Protocol):
    """What the service does with a claimed key outside admission's transaction."""

    async def answered(self, key: str, digest: bytes) -> dict[str, Any] | None:
        """The stored answer of a finished request with this key and body, if there is one."""
        ...

    async def complete(self, key: str, response: dict[str, Any]) -> None:
        """Store the answer: a retry replays it."""
        ...

    async def release(self, key: str) -> None:
        """Let the next retry take the key over at once, with the same event ids."""
        ...


class DataKeys(Protocol):
    """Per-subject data keys that seal the events' personal data."""

    async def current(self, subject_ids: Iterable[str]) -> dict[str, DataKey]:
        """The key to seal new events with, per subject (a new generation after erasure)."""
        ...

    async def shred(self, erasures: Iterable[tuple[str, int, UUID]]) -> None:
        """Destroy each subject's keys up to a generation: ``(subject, through, erasure id)``."""
        ...


class LedgerAppender(Protocol):
    """The ledger log: appends all records of a call or none."""

    async def append(self, records: Sequence[OutRecord]) -> list[Receipt]:
        """Receipts once every record is durable; raises ``AppendError`` when none is."""
        ...
