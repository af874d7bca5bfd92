"""The eligibility feed's wire format and how a subject's state maps to it (pure).

The feed tells mail tools, per subject, whether and for which purposes the person may be
e-mailed now, with the address when they may be. It is keyed by subject id on a compacted
topic, so its latest record per key is the person's current entry; ``None`` (a tombstone) means
the person was erased and must be forgotten.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field

from projections.rows import PurposesDoc, purposes_doc
from projections.state import SubjectState


class FeedPurpose(BaseModel):
    """One purpose of one person, as a mail tool needs it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    eligible: bool = Field(description="May be e-mailed for this purpose (see valid_until).")
    reason: str = Field(description="Why, for people: the deciding event in words.")
    valid_until: datetime | None = Field(
        default=None,
        description="The consent lapses at this instant: treat as not eligible from then on, "
        "even before the ledger records the expiry.",
    )


class FeedEntry(BaseModel):
    """The value of a feed record: a person's current eligibility (the key is subject_id)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    subject_id: str
    email: str | None = Field(
        description="The address; set only while the person is eligible for some purpose."
    )
    purposes: dict[str, FeedPurpose]
    version: int = Field(
        description="The subject's number of events folded when this entry was made; grows from "
        "one record of a subject to the next (events that change nothing here publish nothing)."
    )
    last_event_id: UUID = Field(description="The last event folded into this entry.")
    updated_at: datetime = Field(description="When the ledger recorded that event.")


class FeedChange(BaseModel):
    """A webhook's body: one subject's new entry, or ``entry: null`` when the person was erased."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    subject_id: str
    version: int = Field(description="Keep the highest version per subject; ignore lower ones.")
    last_event_id: UUID
    updated_at: datetime
    entry: FeedEntry | None = Field(description="null: erased; delete everything about them.")


#: The Kafka header on every feed record with the entry's ``version`` (ASCII digits), so that a
#: tombstone, which has no value, says which version it is too.
VERSION_HEADER = "version"

#: What a mail tool sees of a person, as plain values (cheap to compare on the projector's hot
#: path): the address, and per purpose (id, eligible, reason, valid_until). The feed emits only
#: when this changes; ``None`` is the tombstone.
PurposeView = tuple[str, bool, str, datetime | None]
FeedView = tuple[str | None, tuple[PurposeView, ...]] | None
NOTHING_KNOWN: FeedView = (None, ())


def feed_view(state: SubjectState | None, purposes: PurposesDoc | None = None) -> FeedView:
    """The mail-relevant part of a state; an erased person with no new consent is a tombstone.

    Read from the state's ``purposes`` column (:func:`purposes_doc`, passed in when the caller
    has it already, as the projector does), so the feed says what the subscriber row says."""
    if state is None:
        return NOTHING_KNOWN
    doc = purposes_doc(state) if purposes is None else purposes
    said = tuple(
        (
            purpose,
            p["eligible"],
            p["eligibility_reason"],
            p["valid_until"] if p["eligible"] else None,
        )
        for purpose, p in doc.items()
    )
    anywhere = any(eligible for _, eligible, _, _ in said)
    if state.erased is not None and not anywhere:
        return None
    return (state.email if anywhere else None, said)


def feed_entry(state: SubjectState, view: FeedView) -> bytes | None:
    """The feed record's value for a state and its :func:`feed_view`, as the JSON text of a
    :class:`FeedEntry`; ``None`` is a tombstone.

    Written by orjson from the fold's own typed values, times with ``Z`` as pydantic writes
    them: the projector makes one per changed subject, and building and dumping the models
    cost more than the rest of its feed work (``tests/unit/test_feed_view.py`` checks that
    the text is what the model would write)."""
    if view is None:
        return None
    assert state.last_event_id is not None, "a folded state has a last event"
    assert state.updated_at is not None, "a folded state has a time"
    email, purposes = view
    entry = {
        "schema_version": 1,
        "subject_id": state.subject_id,
        "email": email,
        "purposes": {
            purpose: {"eligible": eligible, "reason": reason, "valid_until": until}
            for purpose, eligible, reason, until in purposes
        },
        "version": state.version,
        "last_event_id": state.last_event_id,
        "updated_at": state.updated_at,
    }
    return orjson.dumps(entry, option=orjson.OPT_UTC_Z)


def export_feed_schemas(directory: Path) -> list[Path]:
    """Write the JSON Schemas of the feed's wire formats (Kafka value, webhook body)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in (("feed-entry.v1.json", FeedEntry), ("feed-change.v1.json", FeedChange)):
        path = directory / name
        schema = model.model_json_schema()
        path.write_bytes(
            orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
        written.append(path)
    return written
