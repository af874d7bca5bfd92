"""Rights requests and their lifecycle, and Art. 19 notices to recipients."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from events.envelope import Envelope, NoPersonalData, ShortText, Strict, Submission
from events.types import Reasons, RequestId

Right = Literal["access", "rectification", "erasure", "restriction", "objection", "portability"]


class RequestReceivedData(Strict):
    request_id: RequestId
    right: Right
    channel: Literal["email", "letter", "web_form", "phone", "in_person"]
    written: bool = Field(description="Made in writing (the seed notice asks for it).")
    signed: bool = Field(description="Signed by the person.")
    received_by: ShortText = Field(description="Who at the controller received it.")
    due_on: date | None = Field(
        default=None,
        description="Set by the ledger: one calendar month after the date of receipt in the "
        "register's time zone (Art. 12(3)).",
    )


class IdentityVerifiedData(Strict):
    request_id: RequestId
    method: Literal["signature", "id_document", "email_confirmation", "in_person", "other"]


class RequestExtendedData(Strict):
    request_id: RequestId
    reasons: Reasons
    extended_due_on: date | None = Field(
        default=None, description="Set by the ledger: three months after the date of receipt."
    )


class RequestFulfilledData(Strict):
    request_id: RequestId
    outcome: Literal["granted", "partially_granted"]
    delivered: list[ShortText] = Field(
        default_factory=list, description="What was delivered, e.g. export.json, history.csv."
    )


class RequestRejectedData(Strict):
    request_id: RequestId
    reasons: Reasons
    authority: Annotated[str, NoPersonalData] | None = Field(
        default=None,
        description="Set by the ledger from the register: where the person can complain.",
    )


class RecipientNotifiedData(Strict):
    recipient_id: ShortText
    action: Literal["rectification", "erasure", "restriction"]
    about_event_id: UUID = Field(description="The rectification, erasure or restriction event.")
    request_id: RequestId | None = None


class RequestReceivedBody(Strict):
    type: Literal["request.received"]
    data: RequestReceivedData


class IdentityVerifiedBody(Strict):
    type: Literal["request.identity_verified"]
    data: IdentityVerifiedData


class RequestExtendedBody(Strict):
    type: Literal["request.extended"]
    data: RequestExtendedData


class RequestFulfilledBody(Strict):
    type: Literal["request.fulfilled"]
    data: RequestFulfilledData


class RequestRejectedBody(Strict):
    type: Literal["request.rejected"]
    data: RequestRejectedData


class RecipientNotifiedBody(Strict):
    type: Literal["recipient.notified"]
    data: RecipientNotifiedData


class RequestReceivedIn(RequestReceivedBody, Submission): ...


class IdentityVerifiedIn(IdentityVerifiedBody, Submission): ...


class RequestExtendedIn(RequestExtendedBody, Submission): ...


class RequestFulfilledIn(RequestFulfilledBody, Submission): ...


class RequestRejectedIn(RequestRejectedBody, Submission): ...


class RecipientNotifiedIn(RecipientNotifiedBody, Submission): ...


class RequestReceived(RequestReceivedBody, Envelope):
    """A rights request arrived; ``occurred_at`` is the moment of receipt."""


class IdentityVerified(IdentityVerifiedBody, Envelope):
    """The requester was verified to be the data subject."""


class RequestExtended(RequestExtendedBody, Envelope):
    """The deadline was extended by two months, with reasons told to the person within the
    first month (Art. 12(3))."""


class RequestFulfilled(RequestFulfilledBody, Envelope):
    """The request was answered and carried out."""


class RequestRejected(RequestRejectedBody, Envelope):
    """The request was refused with written reasons and a pointer to the supervisory
    authority (the seed notice's written certificate)."""


class RecipientNotified(RecipientNotifiedBody, Envelope):
    """A recipient named in the register was told of a rectification, erasure or restriction
    (Art. 19); one event per recipient."""
