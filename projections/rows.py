"""How a :class:`SubjectState` maps to PostgreSQL rows and JSON, and back (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, cast
from uuid import UUID

import orjson

from projections.state import Mark, PurposeState, RequestState, SubjectState, verdict


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


def purposes_doc(state: SubjectState) -> PurposesDoc:
    """The ``purposes`` column as orjson encodes it: per purpose its status, eligibility and
    why, and the marks the status is derived from (the :class:`PurposeState` itself, whose
    fields are the marks). Times and ids stay objects: orjson writes them in C, which the
    projector does for every changed subject of every batch."""
    out = {}
    for purpose, p in sorted(state.purposes.items()):
        view = p.view(state.erased)
        judged = verdict(state, view)
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


def purposes_to_json(state: SubjectState) -> dict[str, dict[str, Any]]:
    """The ``purposes`` column as plain JSON values, as a reader of the row gets it."""
    return cast(dict[str, dict[str, Any]], orjson.loads(orjson.dumps(purposes_doc(state))))


def purposes_from_json(data: Mapping[str, Mapping[str, Any]]) -> dict[str, PurposeState]:
    """Inverse of :func:`purposes_to_json`: the marks are read, the rest is derived again."""
    return {
        purpose: PurposeState(**{n: mark_from_json(p["marks"][n]) for n in _MARKS})
        for purpose, p in data.items()
    }


def request_to_json(r: RequestState) -> dict[str, Any]:
    return {
        "request_id": str(r.request_id),
        "right": r.right,
        "channel": r.channel,
        "written": r.written,
        "signed": r.signed,
        "received_by": r.received_by,
        "received_at": _iso(r.received_at),
        "due_on": _iso(r.due_on),
        "status": r.status,
        "last_event_id": str(r.last_event_id),
        "identity_verified_at": _iso(r.identity_verified_at),
        "extended_due_on": _iso(r.extended_due_on),
        "answered_at": _iso(r.answered_at),
        "outcome": r.outcome,
        "reasons": r.reasons,
    }


def request_from_json(r: Mapping[str, Any]) -> RequestState:
    return RequestState(
        request_id=UUID(r["request_id"]),
        right=r["right"],
        channel=r["channel"],
        written=r["written"],
        signed=r["signed"],
        received_by=r["received_by"],
        received_at=datetime.fromisoformat(r["received_at"]),
        due_on=_day(r["due_on"]),
        status=r["status"],
        last_event_id=UUID(r["last_event_id"]),
        identity_verified_at=_time(r["identity_verified_at"]),
        extended_due_on=_day(r["extended_due_on"]),
        answered_at=_time(r["answered_at"]),
        outcome=r["outcome"],
        reasons=r["reasons"],
    )


def requests_to_json(state: SubjectState) -> dict[str, dict[str, Any]]:
    return {str(k): request_to_json(r) for k, r in sorted(state.requests.items())}


def state_from_row(row: Mapping[str, Any]) -> SubjectState:
    """A ``subscribers`` row as the fold's state."""
    return SubjectState(
        subject_id=row["subject_id"],
        email=row["email"],
        purposes=purposes_from_json(row["purposes"]),
        restricted_since=row["restricted_since"],
        erased=mark_from_json(row["erasure"]),
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
        [requests_to_json(s) for s in states],
        [s.version for s in states],
        [s.last_event_id for s in states],
        [s.updated_at for s in states],
    ]


def state_to_json(state: SubjectState) -> dict[str, Any]:
    """The public JSON shape of a subject's current state (used by the read API and exports)."""
    return {
        "subject_id": state.subject_id,
        "email": state.email,
        "purposes": purposes_to_json(state),
        "restricted_since": _iso(state.restricted_since),
        "erased_at": _iso(state.erased.at) if state.erased else None,
        "requests": requests_to_json(state),
        "version": state.version,
        "last_event_id": str(state.last_event_id) if state.last_event_id else None,
        "updated_at": _iso(state.updated_at),
    }
