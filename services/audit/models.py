"""Wire formats of the auditors' tools: signed checkpoints, verification reports, receipts."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, ValidationError

from events.envelope import PurposeId, Strict, SubjectId
from events.register import Address
from events.types import LegalBasis
from services.errors import describe

Hex64 = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{64}$"),
    Field(description="A SHA-256 hash, 64 lowercase hex characters."),
]
Signature = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+$"),
    Field(description="Detached JWS (EdDSA, unencoded payload) over the rest of the document."),
]


class Checkpoint(Strict):
    """A partition's chain head at one position: everything up to ``offset`` hashes to it."""

    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0, description="The last position the hash covers.")
    hash: Hex64
    at: AwareDatetime = Field(description="When the checkpoint was signed.")


class SignedCheckpoint(Checkpoint):
    signature: Signature


class CheckpointFile(Strict):
    """What ``consent-ledger checkpoint`` prints and ``verify --checkpoint`` reads."""

    checkpoints: list[SignedCheckpoint]


FindingKind = Literal[
    "changed", "missing", "inserted", "broken_link", "undecodable", "checkpoint", "signature"
]


class Finding(BaseModel):
    """One discrepancy, and where it is."""

    kind: FindingKind
    partition: int | None = None
    offset: int | None = None
    event_id: UUID | None = None
    detail: str


class PartitionSummary(BaseModel):
    partition: int
    log_positions: int = Field(description="Events on the log (read_committed).")
    chained: int = Field(description="Positions the mirror's chain holds.")
    pending: int = Field(description="Log positions the projector has not reached yet.")
    duplicates: int = Field(description="Positions repeating an earlier event (retried appends).")
    head: Hex64 | None = Field(description="The hash of the last chained position.")


class VerifyReport(BaseModel):
    topic: str
    ok: bool
    findings: list[Finding]
    partitions: list[PartitionSummary]
    checkpoints_checked: int = 0


ReceiptAction = Literal["requested", "confirmed", "given", "withdrawn", "expired", "objected"]


class ReceiptController(Strict):
    name: str
    business_id: str
    address: Address
    contact: str = Field(description="The controller's data protection contact.")
    privacy_notice_url: str | None = None


class ReceiptNotice(Strict):
    """The notice the event names: which wording the person saw (its SHA-256)."""

    version: str
    language: str
    url: str
    sha256: Hex64


class ReceiptPurpose(Strict):
    purpose_id: PurposeId
    name_en: str
    name_fi: str
    legal_basis: LegalBasis
    direct_marketing: bool
    personal_data_categories: list[str]
    retention: str
    notice: ReceiptNotice | None = None


class ReceiptCollection(Strict):
    source_system: str = Field(description="The producer that recorded the event.")
    method: str = Field(description="How it was collected: form, double opt-in, link, phone...")


class ReceiptWithdrawal(Strict):
    """How to withdraw or object, from the register."""

    contact: str
    privacy_notice_url: str | None = None


class ReceiptEvent(Strict):
    """The ledger event the receipt is for, and its place in the hash chain."""

    event_id: UUID
    type: str
    topic: str
    partition: int
    offset: int
    hash: Hex64


class ReceiptBody(Strict):
    """What a consent receipt says (after ISO/IEC TS 27560 and Kantara CR v1.1): no personal
    data, the subject by id only."""

    receipt_version: Literal["consent-ledger-receipt/1"]
    receipt_id: str
    jurisdiction: str
    action: ReceiptAction
    subject_id: SubjectId
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime
    collection: ReceiptCollection
    controller: ReceiptController
    purposes: list[ReceiptPurpose]
    withdrawal: ReceiptWithdrawal
    event: ReceiptEvent


class Receipt(ReceiptBody):
    """A receipt as issued: the body and the ledger's signature over it."""

    signature: Signature


def problems(error: ValidationError) -> str:
    """A document's validation errors on one line: ``field: reason; field: reason``."""
    return "; ".join(f"{e['field']}: {e['reason']}" for e in describe(error.errors()))
