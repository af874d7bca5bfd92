"""The retention job: which events the register's retention rules call for, and appending them.

Two rules, read from the ``subscribers`` projection:

- *Expiry*: an explicit consent whose ``valid_until`` has passed gets ``consent.expired``.
- *Erasure*: a person whose personal data is still held is erased (``subject.erased``, grounds
  ``retention``) once a purpose using that data is in a status its ``retention.erase_on`` names
  and its ``grace_days`` have passed, provided no other purpose using the same data is still
  given or pending (the data is still needed for it), and processing is not restricted (Art. 18:
  a restricted person's data may only be stored, so it must not be destroyed either).

The decision (:func:`due_actions`) is pure over rows, register and "now", so the rules are unit
tested without a database. Every event goes through :class:`IntakeService` under an idempotency
key derived from the event that decided it, and its body is derived only from the rows (never
from the clock), so a second run, a concurrent run, or a run before the projector caught up with
the first one appends nothing new.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg

from events.catalog import SUBMISSION_ADAPTER, AnySubmission
from events.envelope import Source
from events.register import EraseOn, Purpose, Register
from services.intake.policy import PolicyError
from services.intake.service import IdempotencyConflictError, IntakeService

log = logging.getLogger(__name__)

#: Who appends the job's events, as the ledger records it.
RETENTION_SOURCE = Source(system="consent-ledger", actor="retention-job")
#: The channel label of the job's appends (metrics and logs).
CHANNEL = "retention"
#: The purpose status each retention trigger corresponds to.
ERASE_STATUS: dict[EraseOn, str] = {
    "withdrawal": "withdrawn",
    "objection": "objected",
    "expiry": "expired",
}
#: The personal data categories the ledger's projection holds per person (``subscribers.email``),
#: which ``subject.erased`` removes for every purpose at once. Only a purpose that uses some of
#: it can call for an erasure: erasing a newsletter subscriber's e-mail because their analytics
#: cookie consent lapsed would end a subscription the person still wants.
HELD_DATA = frozenset({"email"})
PAGE_SIZE = 1000
#: Submissions in flight at once; the appender groups them into shared Kafka transactions.
CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class SubjectRow:
    """What the job reads of one ``subscribers`` row: never the e-mail address itself."""

    subject_id: str
    holds_data: bool  # email IS NOT NULL
    restricted: bool  # restricted_since IS NOT NULL
    purposes: Mapping[str, Mapping[str, Any]]  # the ``purposes`` jsonb column


@dataclass(frozen=True, slots=True)
class Expire:
    """``consent.expired`` for one purpose; decided by the consent that lapsed."""

    subject_id: str
    purpose: str
    decided_by: str  # event id of the consent
    valid_until: datetime
    occurred_at: datetime
    kind: Literal["expire"] = "expire"

    @property
    def idempotency_key(self) -> str:
        return f"retention:expire:{self.subject_id}:{self.purpose}:{self.decided_by}"

    def submission(self) -> AnySubmission:
        return SUBMISSION_ADAPTER.validate_python(
            {
                "type": "consent.expired",
                "subject_id": self.subject_id,
                "occurred_at": self.occurred_at,
                "source": RETENTION_SOURCE,
                "purpose": self.purpose,
                "data": {"valid_until": self.valid_until},
            }
        )


@dataclass(frozen=True, slots=True)
class Erase:
    """``subject.erased`` under a purpose's retention rule; decided by the purpose's event."""

    subject_id: str
    purpose: str
    decided_by: str  # event id of the withdrawal, objection or expiry
    occurred_at: datetime
    kind: Literal["erase"] = "erase"

    @property
    def idempotency_key(self) -> str:
        return f"retention:erase:{self.subject_id}:{self.decided_by}"

    def submission(self) -> AnySubmission:
        return SUBMISSION_ADAPTER.validate_python(
            {
                "type": "subject.erased",
                "subject_id": self.subject_id,
                "occurred_at": self.occurred_at,
                "source": RETENTION_SOURCE,
                "data": {"grounds": "retention", "purpose": self.purpose},
            }
        )


Action = Expire | Erase


# --- the rules (pure) ---------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _lapsed(view: Mapping[str, Any], now: datetime) -> datetime | None:
    """The passed ``valid_until`` of an explicit consent, else ``None``.

    Only consents lapse: the fold lets an expiry end an explicit consent, never a registration
    under legitimate interest, so expiring one would change nothing and recur on every run.
    """
    if view.get("status") != "given" or view.get("legal_basis") != "consent":
        return None
    valid_until = _time(view.get("valid_until"))
    return valid_until if valid_until is not None and valid_until <= now else None


def _expiries(row: SubjectRow, register: Register, now: datetime) -> list[Expire]:
    out: list[Expire] = []
    for purpose, view in sorted(row.purposes.items()):
        valid_until, ended_at = _lapsed(view, now), _ended_at(view, now)
        if valid_until is None or ended_at is None or register.purpose(purpose) is None:
            continue
        out.append(Expire(row.subject_id, purpose, view["event_id"], valid_until, ended_at))
    return out


def _active(view: Mapping[str, Any], now: datetime) -> bool:
    """Still a reason to keep the data: given (and not lapsed) or awaiting confirmation."""
    if view.get("status") == "pending":
        return True
    return view.get("status") == "given" and _lapsed(view, now) is None


def _ended_at(view: Mapping[str, Any], now: datetime) -> datetime | None:
    """When a purpose stopped needing the data: a lapsed consent at its ``valid_until`` (but
    not before it was given, or the fold would let the consent outlive its expiry), any other
    at the event that decided its status. A lapsed consent's ``consent.expired`` occurs then."""
    changed_at = _time(view.get("changed_at"))
    valid_until = _lapsed(view, now)
    if valid_until is None or changed_at is None:
        return changed_at
    return max(valid_until, changed_at)


def _held(purpose: Purpose) -> set[str]:
    """The held personal data that ``purpose`` uses (what erasing the person takes from it)."""
    return set(purpose.personal_data) & HELD_DATA


def _shares_data(purpose: Purpose, other_id: str, register: Register) -> bool:
    """Whether ``other_id`` uses some of the held data ``purpose`` uses; an unknown purpose is
    assumed to (what it uses cannot be told, so its data is kept)."""
    other = register.purpose(other_id)
    return other is None or bool(_held(purpose) & set(other.personal_data))


def _erasure_moment(
    row: SubjectRow, purpose: Purpose, register: Register, now: datetime
) -> tuple[datetime, datetime] | None:
    """When ``purpose``'s retention rule fired for this person, and when its own trigger did
    (``grace_days`` after its status began); ``None`` if it has not fired.

    It fires once its own trigger has and no purpose sharing its data is active: at the latest
    of those moments, which only the rows decide (the same answer on every run).
    """
    if not _held(purpose):
        return None
    view = row.purposes.get(purpose.id)
    statuses = {ERASE_STATUS[term] for term in purpose.retention.erase_on}
    changed_at = _time(view.get("changed_at")) if view is not None else None
    if view is None or view.get("status") not in statuses or changed_at is None:
        return None
    own = changed_at + timedelta(days=purpose.retention.grace_days)
    moments = [own]
    for other_id, other in row.purposes.items():
        if other_id == purpose.id or not _shares_data(purpose, other_id, register):
            continue
        if _active(other, now):
            return None
        moments.extend(t for t in [_ended_at(other, now)] if t is not None)
    moment = max(moments)
    return (moment, own) if moment <= now else None


def _erasure(row: SubjectRow, register: Register, now: datetime) -> Erase | None:
    if not row.holds_data or row.restricted:
        return None
    fired: list[tuple[datetime, float, str]] = []
    for purpose in register.purposes:
        found = _erasure_moment(row, purpose, register, now)
        if found is not None:
            moment, own = found
            fired.append((moment, -own.timestamp(), purpose.id))
    if not fired:
        return None
    # The earliest rule to fire decides (a rule firing later cannot displace it between runs);
    # of rules firing together, the one whose own trigger was last, which made them fire.
    moment, _, purpose_id = min(fired)
    return Erase(row.subject_id, purpose_id, row.purposes[purpose_id]["event_id"], moment)


def due_actions(rows: Iterable[SubjectRow], register: Register, now: datetime) -> list[Action]:
    """Every event the retention rules call for, as of ``now``, in row order."""
    out: list[Action] = []
    for row in rows:
        out.extend(_expiries(row, register, now))
        erase = _erasure(row, register, now)
        if erase is not None:
            out.append(erase)
    return out


# --- candidates (one set-based query per page) --------------------------------------------

#: A superset of the rows :func:`due_actions` acts on: a purpose lapsed, or a purpose in a
#: triggering status past its grace period (the per-purpose rules come as arrays). Whether
#: another purpose still needs the data is left to the pure rules.
CANDIDATES = """
SELECT s.subject_id, s.email IS NOT NULL AS holds_data,
       s.restricted_since IS NOT NULL AS restricted, s.purposes
FROM subscribers AS s
WHERE s.subject_id > $1
  AND EXISTS (
    SELECT 1 FROM jsonb_each(s.purposes) AS p(purpose, v)
    WHERE (v->>'status' = 'given' AND v->>'legal_basis' = 'consent'
           AND (v->>'valid_until')::timestamptz <= $2)
       OR (s.email IS NOT NULL AND s.restricted_since IS NULL AND EXISTS (
            SELECT 1 FROM unnest($3::text[], $4::text[], $5::timestamptz[])
                 AS r(purpose, status, cutoff)
            WHERE r.purpose = p.purpose AND r.status = v->>'status'
              AND (v->>'changed_at')::timestamptz <= r.cutoff)))
ORDER BY s.subject_id
LIMIT $6
"""


def rule_arrays(register: Register, now: datetime) -> tuple[list[str], list[str], list[datetime]]:
    """The erasure triggers as (purpose, status, latest changed_at) arrays for the query."""
    rules = [
        (p.id, ERASE_STATUS[term], now - timedelta(days=p.retention.grace_days))
        for p in register.purposes
        if _held(p)
        for term in p.retention.erase_on
    ]
    return [r[0] for r in rules], [r[1] for r in rules], [r[2] for r in rules]


async def candidate_pages(
    pool: asyncpg.Pool[Any], register: Register, now: datetime, page_size: int = PAGE_SIZE
) -> AsyncIterator[list[SubjectRow]]:
    """Candidate rows in pages, by subject id (keyset paging: stable while rows change)."""
    purposes, statuses, cutoffs = rule_arrays(register, now)
    after = ""
    while True:
        rows = await pool.fetch(CANDIDATES, after, now, purposes, statuses, cutoffs, page_size)
        if not rows:
            return
        yield [
            SubjectRow(r["subject_id"], r["holds_data"], r["restricted"], r["purposes"])
            for r in rows
        ]
        if len(rows) < page_size:
            return
        after = rows[-1]["subject_id"]


# --- running ------------------------------------------------------------------------------


@dataclass
class Report:
    """What one run appended (or, in a dry run, would append)."""

    dry_run: bool = False
    expired: int = 0
    erased: int = 0
    skipped: int = 0  # already appended by an earlier run, or being appended by another
    subjects: set[str] = field(default_factory=set)

    def count(self, action: Action) -> None:
        if action.kind == "expire":
            self.expired += 1
        else:
            self.erased += 1
        self.subjects.add(action.subject_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "expired": self.expired,
            "erased": self.erased,
            "skipped": self.skipped,
            "subjects": sorted(self.subjects),
        }


class RetentionJob:
    """Finds what the retention rules call for and appends it through intake."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        service: IntakeService,
        register: Register,
        *,
        page_size: int = PAGE_SIZE,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self._pool = pool
        self._service = service
        self._register = register
        self._page_size = page_size
        self._concurrency = concurrency

    async def run(self, now: datetime | None = None, *, dry_run: bool = False) -> Report:
        """One pass over the table; raises ``AppendError`` when Kafka took none of a page."""
        now = now or datetime.now(UTC)
        report = Report(dry_run=dry_run)
        async for rows in candidate_pages(self._pool, self._register, now, self._page_size):
            actions = due_actions(rows, self._register, now)
            if dry_run:
                for action in actions:
                    report.count(action)
            else:
                await self._append_all(actions, report)
        log.info(
            "retention run finished",
            extra={
                "subject_ids": sorted(report.subjects),
                "records": report.expired + report.erased,
            },
        )
        return report

    async def _append_all(self, actions: Sequence[Action], report: Report) -> None:
        """Each action under its own key, a few at a time (the appender shares transactions);
        every action is tried before the first failure is raised."""
        gate = asyncio.Semaphore(self._concurrency)

        async def one(action: Action) -> None:
            async with gate:
                await self._append(action, report)

        results = await asyncio.gather(*(one(a) for a in actions), return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            raise failure

    async def _append(self, action: Action, report: Report) -> None:
        try:
            accepted = await self._service.submit(
                [action.submission()], action.idempotency_key, CHANNEL
            )
        except IdempotencyConflictError as exc:
            # 409: another run holds the key now; 422: an earlier run appended it with a body
            # from different rules (the register changed). Either way it is not ours to append.
            report.skipped += 1
            log.warning(
                "retention event left to another run",
                extra={"subject_ids": [action.subject_id], "error": str(exc)},
            )
            return
        except PolicyError as exc:
            report.skipped += 1
            log.error(
                "retention event refused by the ledger",
                extra={"subject_ids": [action.subject_id], "error": str(exc)},
            )
            return
        if accepted.replayed:
            report.skipped += 1
        else:
            report.count(action)
