"""The write path's ports in memory: the same semantics as PostgreSQL and Kafka, in one process.

For the service layer's fast tests, and for anything that wants the ledger's write rules
without a stack. Batches are serialised by one lock (PostgreSQL serialises only batches that
share an address or subject: stricter here, never looser), a batch's writes are staged and
applied only when it commits, and suppression marks, holders, owners and idempotency claims
follow the PostgreSQL adapters' rules; ``tests/contract`` runs one suite against both.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from events.catalog import AnySubmission
from events.sealing import DataKey
from services.intake.policy import KnownRequest, KnownRequests, requested_ids
from services.intake.ports import CLAIM_LEASE_S, Claim
from services.messaging.records import OutRecord, Receipt
from services.privacy.suppression import AddressBook, Why, read_book


@dataclass(frozen=True, slots=True)
class ClaimedKey:
    """A claimed key: the plan (ids, time) while pending, the answer once done."""

    digest: bytes
    event_ids: list[UUID]
    recorded_at: datetime
    claimed_at: float
    response: dict[str, Any] | None = None


class MemoryIdempotency:
    """Idempotency keys; claims are made inside :class:`MemoryAdmission`'s transactions."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.claimed: dict[str, ClaimedKey] = {}

    def claim(
        self, key: str, digest: bytes, event_ids: list[UUID], recorded_at: datetime
    ) -> tuple[Claim, ClaimedKey | None]:
        """The claim's outcome, and the row to store if the transaction commits."""
        now = self._clock()
        found = self.claimed.get(key)
        if found is None:
            return Claim("new", event_ids, recorded_at), ClaimedKey(
                digest, event_ids, recorded_at, now
            )
        if found.digest != digest:
            return Claim("mismatch", []), None
        if found.response is not None:
            return Claim("replay", [], response=copy.deepcopy(found.response)), None
        if found.claimed_at >= now - CLAIM_LEASE_S:
            return Claim("in_progress", []), None
        return Claim("new", found.event_ids, found.recorded_at), replace(found, claimed_at=now)

    def store(self, key: str, request: ClaimedKey) -> None:
        self.claimed[key] = request

    async def answered(self, key: str, digest: bytes) -> dict[str, Any] | None:
        found = self.claimed.get(key)
        if found is None or found.digest != digest or found.response is None:
            return None
        return copy.deepcopy(found.response)

    async def complete(self, key: str, response: dict[str, Any]) -> None:
        if key in self.claimed:
            self.claimed[key] = replace(self.claimed[key], response=copy.deepcopy(response))

    async def release(self, key: str) -> None:
        found = self.claimed.get(key)
        if found is not None and found.response is None:
            self.claimed[key] = replace(found, claimed_at=float("-inf"))


@dataclass(slots=True)
class _Owner:
    """An address's first subject, and its suppression mark with the event that made it."""

    subject_id: str
    suppression: Why | None = None
    suppressed_by: UUID | None = None


class MemoryAdmission:
    """The address book and the rights requests; ``requests`` stands for the projection's."""

    def __init__(self, claims: MemoryIdempotency, requests: Iterable[KnownRequest] = ()) -> None:
        self._claims = claims
        self._lock = asyncio.Lock()
        self.owners: dict[bytes, _Owner] = {}
        self.holders: set[tuple[bytes, str]] = set()
        self.requests = list(requests)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[MemoryBatch]:
        async with self._lock:
            batch = MemoryBatch(self, self._claims)
            yield batch
            batch.commit()  # not reached when the block raised: nothing staged is kept

    async def unmark(self, event_ids: Iterable[UUID]) -> None:
        taken_back = set(event_ids)
        for owner in self.owners.values():
            if owner.suppressed_by in taken_back:
                owner.suppression = owner.suppressed_by = None


class MemoryBatch:
    """One transaction: reads the committed state, stages its writes until :meth:`commit`."""

    def __init__(self, state: MemoryAdmission, claims: MemoryIdempotency) -> None:
        self._state = state
        self._claims = claims
        self._book: tuple[AddressBook, Sequence[UUID]] | None = None
        self._claim: tuple[str, ClaimedKey] | None = None

    async def book(
        self, submissions: Sequence[AnySubmission], keys: Mapping[int, bytes]
    ) -> AddressBook:
        return await read_book(self, submissions, keys)

    async def lock(self, keys: set[bytes], subjects: set[str]) -> None:
        """Nothing to do: the whole transaction holds the store's lock."""

    async def owners(self, keys: set[bytes]) -> list[tuple[bytes, str, Why | None]]:
        found = [(k, self._state.owners[k]) for k in keys if k in self._state.owners]
        return [(k, o.subject_id, o.suppression) for k, o in found]

    async def holders(self, keys: set[bytes], subjects: set[str]) -> list[tuple[bytes, str]]:
        theirs = {k for k, s in self._state.holders if s in subjects}
        return [(k, s) for k, s in self._state.holders if k in keys or k in theirs]

    async def known_requests(self, submissions: Sequence[AnySubmission]) -> KnownRequests:
        ids = set(requested_ids(submissions))
        return KnownRequests(r for r in self._state.requests if r.request_id in ids)

    async def claim(
        self, key: str, digest: bytes, event_ids: list[UUID], recorded_at: datetime
    ) -> Claim:
        claim, row = self._claims.claim(key, digest, event_ids, recorded_at)
        if row is not None:
            self._claim = (key, row)
        return claim

    async def record(self, book: AddressBook, event_ids: Sequence[UUID]) -> None:
        self._book = (book, event_ids)

    def commit(self) -> None:
        if self._claim is not None:
            self._claims.store(*self._claim)
        if self._book is not None:
            self._apply(*self._book)

    def _apply(self, book: AddressBook, event_ids: Sequence[UUID]) -> None:
        """As PostgreSQL's inserts: a known owner stays, and a mark never replaces a mark."""
        for key, subject_id in book.new_owners.items():
            self._state.owners.setdefault(key, _Owner(subject_id))
        self._state.holders |= book.new_holders
        for mark in book.marks:
            owner = self._state.owners.get(mark.key)
            if owner is not None and owner.suppression is None:
                owner.suppression, owner.suppressed_by = mark.why, event_ids[mark.cause]


class MemoryKeyStore:
    """Data keys by subject and generation; a shredded key is kept as ``None``."""

    def __init__(self) -> None:
        self.generations: dict[str, dict[int, DataKey | None]] = {}

    async def current(self, subject_ids: Iterable[str]) -> dict[str, DataKey]:
        return {subject: self._current_of(subject) for subject in dict.fromkeys(subject_ids)}

    def _current_of(self, subject_id: str) -> DataKey:
        """The latest generation if it is live, else the next one, made now."""
        generations = self.generations.setdefault(subject_id, {})
        latest = max(generations, default=0)
        key = generations.get(latest)
        if key is None:
            key = generations[latest + 1] = DataKey.generate(subject_id, latest + 1)
        return key

    async def shred(self, erasures: Iterable[tuple[str, int, UUID]]) -> None:
        for subject_id, through, _ in erasures:
            generations = self.generations.get(subject_id, {})
            for generation in generations:
                if generation <= through:
                    generations[generation] = None


class MemoryAppender:
    """A log of one partition per topic; every call's records are appended together."""

    def __init__(self) -> None:
        self.log: list[OutRecord] = []
        self._ends: dict[str, int] = {}

    async def append(self, records: Sequence[OutRecord]) -> list[Receipt]:
        receipts = []
        for record in records:
            offset = self._ends.get(record.topic, 0)
            self._ends[record.topic] = offset + 1
            receipts.append(Receipt(record.topic, 0, offset))
        self.log += records
        return receipts
