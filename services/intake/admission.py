"""Admission: the one step from submissions to the events to append, for every writer (HTTP
single and batch, the Kafka intake topic, rights requests, the retention job).

One transaction of the unit of work (:class:`~services.intake.ports.AdmissionUnitOfWork`) per
batch locks and reads what the ledger has committed about the batch's addresses and rights
requests, decides (purely, :class:`LedgerPolicy`), reserves the event ids, and writes what the
accepted items add (new addresses, their holders, suppressions, each naming its event id), then
commits *before* the events are appended. So a batch that follows another one touching the same
address sees its suppression even while the projector lags, and a refused batch rolls back,
leaving nothing behind. If the append then fails, the caller takes the suppressions back
(:meth:`Admission.withdraw`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from events.catalog import AnyEvent, AnySubmission
from events.ids import uuid7
from services.intake.policy import Decision, LedgerPolicy, PolicyError
from services.intake.ports import AdmissionBatch, AdmissionUnitOfWork, Deadlock
from services.intake.recording import materialize
from services.privacy.identity import IdentityIndex

#: Two batches that lock overlapping addresses in different rounds can deadlock; the backend
#: aborts one of them (:class:`Deadlock`), which is then decided again from scratch.
ATTEMPTS = 5

#: Reserves the event ids (and recording time) for a decision's drafts, inside the transaction:
#: HTTP intake claims its idempotency key here, so a refused request leaves no claim either.
Reserve = Callable[[AdmissionBatch, Decision], Awaitable[tuple[list[UUID], datetime]]]


async def fresh_ids(_batch: AdmissionBatch, decision: Decision) -> tuple[list[UUID], datetime]:
    return [uuid7() for _ in decision.drafts], datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Admitted:
    """A decided batch: the accepted items' events (not sealed yet), and per item its span
    of ``events`` or its problems (``decision``)."""

    decision: Decision
    events: list[AnyEvent]

    @property
    def event_ids(self) -> list[UUID]:
        return [e.event_id for e in self.events]


class Admission:
    """Decides batches on the ledger's committed state, whatever backend keeps it."""

    def __init__(
        self, work: AdmissionUnitOfWork, policy: LedgerPolicy, identities: IdentityIndex
    ) -> None:
        self._work = work
        self._policy = policy
        self._identities = identities

    async def admit(
        self, submissions: Sequence[AnySubmission], *, whole: bool, reserve: Reserve = fresh_ids
    ) -> Admitted:
        """Decide a batch and commit what it adds. ``whole``: any problem refuses every item
        (raises :class:`PolicyError`); otherwise each refused item is left out alone."""
        keys = self._identities.keys(submissions)
        attempt = 1
        while True:
            try:
                return await self._attempt(submissions, keys, whole, reserve)
            except Deadlock:
                if attempt == ATTEMPTS:
                    raise
                attempt += 1

    async def _attempt(
        self,
        submissions: Sequence[AnySubmission],
        keys: Mapping[int, bytes],
        whole: bool,
        reserve: Reserve,
    ) -> Admitted:
        async with self._work.begin() as batch:
            book = await batch.book(submissions, keys)
            known = await batch.known_requests(submissions)
            minted = {key: f"sub-{uuid7()}" for key in set(keys.values())}
            decision = self._policy.decide(submissions, keys, book, known, minted)
            if whole and decision.problems:
                raise PolicyError(decision.problems)
            event_ids, recorded_at = await reserve(batch, decision)
            await batch.record(book, event_ids)
        return Admitted(decision, materialize(decision.drafts, event_ids, recorded_at))

    async def withdraw(self, admitted: Admitted) -> None:
        """The events were not appended: take their suppressions back."""
        await self._work.unmark(admitted.event_ids)
