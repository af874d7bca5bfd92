"""Consent receipts: a signed record of one consent or objection event, for the person and for
auditors, after ISO/IEC TS 27560 and the Kantara Consent Receipt v1.1.

A receipt is built from the event, the register (controller, purpose, notice, how to withdraw)
and the event's place in the hash chain; it names the person by subject id only, never by
e-mail, IP address or user agent. It is signed like a checkpoint (``services/audit/signing``),
so it verifies offline with the controller's public key.
"""

from __future__ import annotations

from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from events.catalog import AnyEvent
from events.consent import (
    ConsentConfirmed,
    ConsentExpired,
    ConsentGiven,
    ConsentRequested,
    ConsentWithdrawn,
    ObjectionReceived,
)
from events.register import Register
from events.types import LegalBasis
from services.audit.models import (
    Receipt,
    ReceiptAction,
    ReceiptBody,
    ReceiptCollection,
    ReceiptController,
    ReceiptEvent,
    ReceiptNotice,
    ReceiptPurpose,
    ReceiptWithdrawal,
    problems,
)
from services.audit.signing import sign, verify

VERSION = "consent-ledger-receipt/1"
ReceiptEventType = (
    ConsentRequested
    | ConsentConfirmed
    | ConsentGiven
    | ConsentWithdrawn
    | ConsentExpired
    | ObjectionReceived
)
ACTIONS: dict[type[Any], ReceiptAction] = {
    ConsentRequested: "requested",
    ConsentConfirmed: "confirmed",
    ConsentGiven: "given",
    ConsentWithdrawn: "withdrawn",
    ConsentExpired: "expired",
    ObjectionReceived: "objected",
}


class ReceiptError(ValueError):
    """No receipt can be issued for this event, or a receipt does not verify."""


def _collection_method(event: ReceiptEventType) -> str:
    if isinstance(event, ConsentConfirmed):
        return f"confirmation:{event.data.confirmation}"
    if isinstance(event, ConsentGiven | ConsentRequested):
        return event.data.method
    if isinstance(event, ConsentWithdrawn | ObjectionReceived):
        return event.data.channel
    return "expiry"


def _legal_basis(event: ReceiptEventType, register_basis: LegalBasis) -> LegalBasis:
    if isinstance(event, ConsentGiven):
        return event.data.legal_basis
    if isinstance(event, ConsentRequested | ConsentConfirmed):
        return "consent"
    return register_basis


def build_receipt(
    event: AnyEvent,
    *,
    topic: str,
    partition: int,
    offset: int,
    chain_hash: bytes,
    register: Register,
    key: Ed25519PrivateKey,
) -> Receipt:
    """The signed receipt of a consent or objection event; :class:`ReceiptError` otherwise."""
    if not isinstance(event, ReceiptEventType):
        raise ReceiptError(
            f"event {event.event_id} is a {event.type}; receipts are issued for consent and "
            "objection events only"
        )
    purpose = register.purpose(event.purpose)
    if purpose is None:
        raise ReceiptError(
            f"purpose {event.purpose!r} of event {event.event_id} is not in the register"
        )
    version = getattr(event.data, "notice_version", None)
    notice = purpose.notice(version) if isinstance(version, str) else None
    controller = register.controller
    body: dict[str, Any] = {
        "receipt_version": VERSION,
        "receipt_id": f"urn:consent-ledger:receipt:{event.event_id}",
        "jurisdiction": controller.address.country,
        "action": ACTIONS[type(event)],
        "subject_id": event.subject_id,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "collection": ReceiptCollection(
            source_system=event.source.system, method=_collection_method(event)
        ),
        "controller": ReceiptController(
            name=controller.name,
            business_id=controller.business_id,
            address=controller.address,
            contact=str(controller.dpo_contact),
            privacy_notice_url=controller.privacy_notice_url,
        ),
        "purposes": [
            ReceiptPurpose(
                purpose_id=purpose.id,
                name_en=purpose.name_en,
                name_fi=purpose.name_fi,
                legal_basis=_legal_basis(event, purpose.legal_basis),
                direct_marketing=purpose.direct_marketing,
                personal_data_categories=list(purpose.personal_data),
                retention=purpose.retention.description,
                notice=ReceiptNotice(
                    version=notice.version,
                    language=notice.language,
                    url=notice.url,
                    sha256=notice.sha256,
                )
                if notice
                else None,
            )
        ],
        "withdrawal": ReceiptWithdrawal(
            contact=str(controller.dpo_contact), privacy_notice_url=controller.privacy_notice_url
        ),
        "event": ReceiptEvent(
            event_id=event.event_id,
            type=event.type,
            topic=topic,
            partition=partition,
            offset=offset,
            hash=chain_hash.hex(),
        ),
    }
    unsigned = ReceiptBody(**body).model_dump(mode="json", exclude_none=True)
    return Receipt.model_validate({**unsigned, "signature": sign(key, unsigned)})


def receipt_json(receipt: Receipt) -> bytes:
    """The receipt as served and as saved: the signed fields exactly, sorted, no nulls."""
    return orjson.dumps(
        receipt.model_dump(mode="json", exclude_none=True),
        option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2,
    )


def verify_receipt(data: bytes, key: Ed25519PublicKey) -> Receipt:
    """Check a saved receipt offline: its shape, then ``key``'s signature over every field."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ReceiptError(f"receipt: not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ReceiptError("receipt: must be a JSON object")
    try:
        receipt = Receipt.model_validate(raw)
    except ValidationError as exc:
        raise ReceiptError(f"receipt: {problems(exc)}") from exc
    verify(key, raw, receipt.signature)
    return receipt
