"""Consent and objection events: one purpose each (GDPR Art. 6, 7, 21)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from events.envelope import (
    Envelope,
    PlainUrl,
    PurposeId,
    Source,
    Strict,
    Submission,
    UtcDatetime,
)
from events.types import Channel, Language, LegalBasis, NoticeVersion

#: The source of the objection the ledger adds for every other subject holding an address when
#: the address's person objects or is erased (services/privacy/suppression.py).
SUPPRESSION_SOURCE = Source(system="consent-ledger", actor="address-suppression")

CollectionMethod = Literal["web_form", "checkbox", "double_opt_in", "paper", "phone", "crm_import"]


class NoticeShown(Strict):
    """Which notice the person saw, and how the agreement was collected (Art. 7(1))."""

    notice_version: NoticeVersion
    language: Language
    method: CollectionMethod = Field(description="How the consent or the contact was collected.")
    form_url: PlainUrl | None = None


class ConsentGivenData(NoticeShown):
    legal_basis: LegalBasis = Field(
        default="consent",
        description="`consent` for an explicit opt-in; `legitimate_interest` for a contact "
        "registered under the controller's legitimate interest (a CRM import).",
    )
    valid_until: UtcDatetime | None = Field(
        default=None, description="When the consent lapses unless renewed."
    )


class ConsentRequestedData(NoticeShown):
    pass


class ConsentConfirmedData(Strict):
    notice_version: NoticeVersion
    language: Language
    confirmation: Literal["email_link", "sms_code", "other"] = Field(
        description="How the person confirmed the pending (double opt-in) request."
    )
    valid_until: UtcDatetime | None = None


class ConsentWithdrawnData(Strict):
    channel: Channel


class ConsentExpiredData(Strict):
    valid_until: datetime = Field(description="The end of validity that has passed.")


class ObjectionData(Strict):
    scope: Literal["direct_marketing", "processing"] = Field(
        description="`direct_marketing`: Art. 21(2)-(3), marketing stops with no balancing "
        "test; `processing`: Art. 21(1), processing based on legitimate interest."
    )
    channel: Channel
    automated: bool = Field(
        default=False, description="Made by automated means, e.g. a list-unsubscribe click (21(5))."
    )


class ConsentRequestedBody(Strict):
    type: Literal["consent.requested"]
    purpose: PurposeId
    data: ConsentRequestedData


class ConsentConfirmedBody(Strict):
    type: Literal["consent.confirmed"]
    purpose: PurposeId
    data: ConsentConfirmedData


class ConsentGivenBody(Strict):
    type: Literal["consent.given"]
    purpose: PurposeId
    data: ConsentGivenData


class ConsentWithdrawnBody(Strict):
    type: Literal["consent.withdrawn"]
    purpose: PurposeId
    data: ConsentWithdrawnData


class ConsentExpiredBody(Strict):
    type: Literal["consent.expired"]
    purpose: PurposeId
    data: ConsentExpiredData


class ObjectionReceivedBody(Strict):
    type: Literal["objection.received"]
    purpose: PurposeId
    data: ObjectionData


class ConsentRequestedIn(ConsentRequestedBody, Submission): ...


class ConsentConfirmedIn(ConsentConfirmedBody, Submission): ...


class ConsentGivenIn(ConsentGivenBody, Submission): ...


class ConsentWithdrawnIn(ConsentWithdrawnBody, Submission): ...


class ConsentExpiredIn(ConsentExpiredBody, Submission): ...


class ObjectionReceivedIn(ObjectionReceivedBody, Submission): ...


class ConsentRequested(ConsentRequestedBody, Envelope):
    """Double opt-in started: the person asked to subscribe and must confirm. Not yet eligible."""


class ConsentConfirmed(ConsentConfirmedBody, Envelope):
    """The person confirmed a pending request: an explicit consent under the requested notice."""


class ConsentGiven(ConsentGivenBody, Envelope):
    """The person agreed to a purpose under a notice version (or was registered under
    legitimate interest, when ``legal_basis`` says so)."""


class ConsentWithdrawn(ConsentWithdrawnBody, Envelope):
    """The person withdrew consent to a purpose (Art. 7(3)). Only a fresh explicit consent
    makes them eligible again; a CRM re-import does not."""


class ConsentExpired(ConsentExpiredBody, Envelope):
    """A consent's validity period ended without renewal."""


class ObjectionReceived(ObjectionReceivedBody, Envelope):
    """The person objected (Art. 21). Processing for the purpose stops for good, until the
    person gives a fresh explicit consent."""
