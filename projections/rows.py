"""How a :class:`SubjectState` maps to a ``subscribers`` row and back (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from projections.state import PurposeState, SubjectState


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def purposes_to_json(purposes: Mapping[str, PurposeState]) -> dict[str, dict[str, Any]]:
    """The ``purposes`` column: one object per purpose, JSON-ready."""
    return {
        purpose: {
            "status": p.status,
            "legal_basis": p.legal_basis,
            "notice_version": p.notice_version,
            "changed_at": _iso(p.changed_at),
            "event_id": str(p.event_id),
            "valid_until": _iso(p.valid_until),
        }
        for purpose, p in sorted(purposes.items())
    }


def purposes_from_json(data: Mapping[str, Mapping[str, Any]]) -> dict[str, PurposeState]:
    """Inverse of :func:`purposes_to_json`."""
    return {
        purpose: PurposeState(
            status=p["status"],
            legal_basis=p["legal_basis"],
            notice_version=p["notice_version"],
            changed_at=datetime.fromisoformat(p["changed_at"]),
            event_id=UUID(p["event_id"]),
            valid_until=datetime.fromisoformat(p["valid_until"]) if p["valid_until"] else None,
        )
        for purpose, p in data.items()
    }


def state_from_row(row: Mapping[str, Any]) -> SubjectState:
    """A ``subscribers`` row as the fold's state."""
    return SubjectState(
        subject_id=row["subject_id"],
        email=row["email"],
        purposes=purposes_from_json(row["purposes"]),
        version=row["version"],
        last_event_id=row["last_event_id"],
        updated_at=row["updated_at"],
    )


def state_to_json(state: SubjectState) -> dict[str, Any]:
    """The public JSON shape of a subject's current state (used by the read API)."""
    return {
        "subject_id": state.subject_id,
        "email": state.email,
        "purposes": purposes_to_json(state.purposes),
        "version": state.version,
        "last_event_id": str(state.last_event_id) if state.last_event_id else None,
        "updated_at": _iso(state.updated_at),
    }
