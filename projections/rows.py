"""How a :class:`SubjectState` maps to PostgreSQL rows and JSON, and back (pure).

A subject's state is two tables: its ``subscribers`` row, and one ``rights_requests`` row per
rights request (received or not yet: the fold keeps lifecycle marks that came before the
receipt). A batch loads both in one statement (``projections/store.py`` ``LOAD_SUBJECTS``):
the requests arrive as the ``requests`` value of the subscriber's row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, cast
from uuid import UUID

import orjson

from projections.state import (
    Address,
    Erasure,
    Mark,
    PurposeState,
    Receipt,
    RequestState,
    Step,
    SubjectState,
    received_requests,
    verdict_at,
)


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def mark_from_json(data: Mapping[str, Any] | None) -> Mark | None:
    if data is None:
        return None
    return Mark(
        at=datetime.fromisoformat(data["at"]),
        event_id=UUID(data["event_id"]),
        notice_version=data["notice_version"],
        valid_until=_time(data["valid_until"]),
        kind=data["kind"],
    )


_MARKS = ("explicit", "registration", "pending", "block", "expiry")


#: The ``purposes`` column before encoding: per purpose (in order) its fields, see below.
PurposesDoc = dict[str, dict[str, Any]]


def purposes_doc(state: SubjectState, at: datetime | None = None) -> PurposesDoc:
    """The ``purposes`` column as orjson encodes it: per purpose its status, eligibility and
    why, and the marks the status is derived from (the :class:`PurposeState` itself, whose
    fields are the marks). Times and ids stay objects: orjson writes them in C, which the
    projector does for every changed subject of every batch.

    The column judges eligibility on the events alone (``at`` None); a reader passes its
    instant, so that a consent whose validity ended by then is not eligible."""
    out = {}
    for purpose, p in sorted(state.purposes.items()):
        view = p.view(state.erasure)
        judged = verdict_at(state, view, at)
        out[purpose] = {
            "status": view.status,
            "legal_basis": view.legal_basis,
            "notice_version": view.notice_version,
            "changed_at": view.decided_by.at,
            "event_id": view.decided_by.event_id,
            "valid_until": view.valid_until,
            "eligible": judged.eligible,
            "eligibility_reason": judged.reason,
            "marks": p,
        }
    return out


def purposes_to_json(state: SubjectState, at: datetime | None = None) -> dict[str, dict[str, Any]]:
    """:func:`purposes_doc` as plain JSON values, as a reader of the row gets it."""
    return cast(dict[str, dict[str, Any]], orjson.loads(orjson.dumps(purposes_doc(state, at))))


def purposes_from_json(data: Mapping[str, Mapping[str, Any]]) -> dict[str, PurposeState]:
    """Inverse of :func:`purposes_to_json`: the marks are read, the rest is derived again."""
    return {
        purpose: PurposeState(**{n: mark_from_json(p["marks"][n]) for n in _MARKS})
        for purpose, p in data.items()
    }


def _plain(value: Any) -> Any:
    """Dataclasses, times and ids as plain JSON values, as orjson writes them."""
    return orjson.loads(orjson.dumps(value))


def _request_marks(r: RequestState) -> dict[str, Any]:
    """What a request's fields are derived from: the ``marks`` of its row."""
    return {
        "receipt": r.receipt,
        "verified": r.verified,
        "extension": r.extension,
        "answer": r.answer,
        "last": r.last,
    }


def request_to_json(r: RequestState) -> dict[str, Any]:
    """A request's fields, flat as readers take them (``None`` where no event says), and the
    marks they are derived from: its ``rights_requests`` row as JSON."""
    receipt = r.receipt
    return {
        "request_id": str(r.request_id),
        "right": receipt.right if receipt else None,
        "channel": receipt.channel if receipt else None,
        "written": receipt.written if receipt else None,
        "signed": receipt.signed if receipt else None,
        "received_by": receipt.received_by if receipt else None,
        "received_at": _iso(receipt.at) if receipt else None,
        "due_on": _iso(receipt.due_on) if receipt else None,
        "status": r.status,
        "last_event_id": str(r.last_event_id),
        "identity_verified_at": _iso(r.identity_verified_at),
        "extended_due_on": _iso(r.extended_due_on),
        "answered_at": _iso(r.answered_at),
        "outcome": r.outcome,
        "reasons": r.reasons,
        "marks": _plain(_request_marks(r)),
    }


def _step(data: Mapping[str, Any] | None) -> Step | None:
    if data is None:
        return None
    return Step(
        at=datetime.fromisoformat(data["at"]),
        event_id=UUID(data["event_id"]),
        status=data["status"],
        extended_due_on=_day(data["extended_due_on"]),
        outcome=data["outcome"],
        reasons=data["reasons"],
    )


def _receipt(data: Mapping[str, Any] | None) -> Receipt | None:
    if data is None:
        return None
    parsed = {"at": datetime.fromisoformat(data["at"]), "event_id": UUID(data["event_id"])}
    return Receipt(**{**data, **parsed, "due_on": _day(data["due_on"])})


def request_from_json(r: Mapping[str, Any]) -> RequestState:
    """Inverse of :func:`request_to_json`: the marks are read, the rest is derived again."""
    if r.get("marks") is None:
        return _legacy_request(r)
    marks = r["marks"]
    last = mark_from_json(marks["last"])
    assert last is not None, "a request has a latest event"
    return RequestState(
        request_id=UUID(r["request_id"]),
        last=last,
        receipt=_receipt(marks["receipt"]),
        verified=mark_from_json(marks["verified"]),
        extension=_step(marks["extension"]),
        answer=_step(marks["answer"]),
    )


def _legacy_request(r: Mapping[str, Any]) -> RequestState:
    """A request as rows written before the marks hold it (migration 011 left their ``marks``
    NULL; all of them were received): each step from its fields. Times not written (the
    extension's) are taken as the receipt's, so that a step already stored stays the earliest;
    ids not written are the request's last event's."""
    event_id = UUID(r["last_event_id"])
    received_at = datetime.fromisoformat(r["received_at"])
    verified_at, answered_at = _time(r["identity_verified_at"]), _time(r["answered_at"])
    status, reasons = r["status"], r["reasons"]
    receipt = Receipt(
        received_at, event_id, r["right"], r["channel"], r["written"], r["signed"],
        r["received_by"], _day(r["due_on"]),
    )  # fmt: skip
    extension = answer = None
    if status == "extended" or r["extended_due_on"] or (status == "fulfilled" and reasons):
        kept = reasons if status != "rejected" else None  # a rejection's reasons replaced them
        extension = Step(received_at, event_id, "extended", _day(r["extended_due_on"]), None, kept)
    if answered_at is not None:
        kept = reasons if status == "rejected" else None
        answer = Step(answered_at, event_id, status, None, r["outcome"], kept)
    return RequestState(
        request_id=UUID(r["request_id"]),
        last=Mark(max(t for t in (received_at, verified_at, answered_at) if t), event_id),
        receipt=receipt,
        verified=Mark(verified_at, event_id) if verified_at else None,
        extension=extension,
        answer=answer,
    )


def requests_to_json(state: SubjectState) -> dict[str, dict[str, Any]]:
    """Every request, received or not yet, by id: the ``requests`` value a batch loads with the
    subscriber's row (``rights_requests`` keeps both, so that a later fold can complete one)."""
    return {str(k): request_to_json(r) for k, r in sorted(state.requests.items())}


def marks_doc(state: SubjectState) -> dict[str, Any]:
    """The ``marks`` column: what the restriction, the e-mail address and the erasure are
    derived from (the erasure's latest mark is the ``erasure`` column)."""
    return {
        "restriction_applied": state.restriction_applied,
        "restriction_lifted": state.restriction_lifted,
        "addresses": state.addresses,
        "erasure_recorded_last": state.erasure.recorded_last if state.erasure else None,
    }


def _address(data: Mapping[str, Any]) -> Address:
    return Address(datetime.fromisoformat(data["at"]), UUID(data["event_id"]), data["email"])


def state_from_row(row: Mapping[str, Any]) -> SubjectState:
    """A ``subscribers`` row, with its subject's ``requests`` (see the module doc), as the fold's
    state."""
    marks = row["marks"]
    latest = mark_from_json(row["erasure"])
    last_recorded = marks.get("erasure_recorded_last")
    return SubjectState(
        subject_id=row["subject_id"],
        addresses=tuple(_address(a) for a in marks.get("addresses", ())),
        purposes=purposes_from_json(row["purposes"]),
        restriction_applied=mark_from_json(marks.get("restriction_applied")),
        restriction_lifted=mark_from_json(marks.get("restriction_lifted")),
        erasure=Erasure(latest, UUID(last_recorded) if last_recorded else latest.event_id)
        if latest
        else None,
        requests={UUID(k): request_from_json(r) for k, r in row["requests"].items()},
        version=row["version"],
        last_event_id=row["last_event_id"],
        updated_at=row["updated_at"],
    )


def subscriber_columns(
    states: Sequence[SubjectState], purposes: Mapping[str, PurposesDoc]
) -> list[list[Any]]:
    """The ``subscribers`` columns of ``states`` in the upsert's order (``purposes`` holds
    each state's :func:`purposes_doc`); JSON columns are text that orjson wrote, in C."""
    return [
        [s.subject_id for s in states],
        [s.email for s in states],
        [orjson.dumps(purposes[s.subject_id]) for s in states],
        [s.restricted_since for s in states],
        [s.erased.at if s.erased else None for s in states],
        [orjson.dumps(s.erased) if s.erased else None for s in states],  # the mark's fields
        [s.version for s in states],
        [s.last_event_id for s in states],
        [s.updated_at for s in states],
        [orjson.dumps(marks_doc(s)) for s in states],
    ]


def request_columns(states: Sequence[SubjectState]) -> list[list[Any]]:
    """The ``rights_requests`` columns of every request of ``states`` in the upsert's order;
    a request whose receipt was not folded yet has no receipt columns (readers skip it)."""
    requests = [(s.subject_id, r) for s in states for _, r in sorted(s.requests.items())]
    receipts = [r.receipt for _, r in requests]
    return [
        [r.request_id for _, r in requests],
        [subject for subject, _ in requests],
        [c.right if c else None for c in receipts],
        [c.channel if c else None for c in receipts],
        [c.written if c else None for c in receipts],
        [c.signed if c else None for c in receipts],
        [c.received_by if c else None for c in receipts],
        [c.at if c else None for c in receipts],
        [c.due_on if c else None for c in receipts],
        [r.extended_due_on for _, r in requests],
        [r.status for _, r in requests],
        [r.identity_verified_at for _, r in requests],
        [r.answered_at for _, r in requests],
        [r.outcome for _, r in requests],
        [r.reasons for _, r in requests],
        [r.last_event_id for _, r in requests],
        [orjson.dumps(_request_marks(r)) for _, r in requests],
    ]


def state_to_json(state: SubjectState, at: datetime) -> dict[str, Any]:
    """The public JSON shape of a subject's state, with eligibility at ``at``: the one mapping
    behind the read API, the point-in-time API and the export (see ``services/views.py``)."""
    return {
        "subject_id": state.subject_id,
        "email": state.email,
        "purposes": purposes_to_json(state, at),
        "restricted_since": _iso(state.restricted_since),
        "erased_at": _iso(state.erased.at) if state.erased else None,
        "requests": {str(r.request_id): request_to_json(r) for r in received_requests(state)},
        "version": state.version,
        "last_event_id": str(state.last_event_id) if state.last_event_id else None,
        "updated_at": _iso(state.updated_at),
    }
