"""The catalogue of event types: the discriminated unions and the registries by type tag.

Each type is written once as a *body* (its ``type`` tag, purpose and data) in its domain
module and combined with :class:`~events.envelope.Submission` for what producers send and with
:class:`~events.envelope.Envelope` for what the ledger stores.
"""

from __future__ import annotations

from typing import Annotated, get_args

from pydantic import Field, TypeAdapter

from events.consent import (
    ConsentConfirmed,
    ConsentConfirmedIn,
    ConsentExpired,
    ConsentExpiredIn,
    ConsentGiven,
    ConsentGivenIn,
    ConsentRequested,
    ConsentRequestedIn,
    ConsentWithdrawn,
    ConsentWithdrawnIn,
    ObjectionReceived,
    ObjectionReceivedIn,
)
from events.envelope import Envelope, Submission
from events.requests import (
    IdentityVerified,
    IdentityVerifiedIn,
    RecipientNotified,
    RecipientNotifiedIn,
    RequestExtended,
    RequestExtendedIn,
    RequestFulfilled,
    RequestFulfilledIn,
    RequestReceived,
    RequestReceivedIn,
    RequestRejected,
    RequestRejectedIn,
)
from events.subject import (
    Accessed,
    AccessedIn,
    Erased,
    ErasedIn,
    Exported,
    ExportedIn,
    Rectified,
    RectifiedIn,
    RestrictionApplied,
    RestrictionAppliedIn,
    RestrictionLifted,
    RestrictionLiftedIn,
)

AnyEvent = (
    ConsentRequested
    | ConsentConfirmed
    | ConsentGiven
    | ConsentWithdrawn
    | ConsentExpired
    | ObjectionReceived
    | RestrictionApplied
    | RestrictionLifted
    | Rectified
    | Erased
    | Exported
    | Accessed
    | RequestReceived
    | IdentityVerified
    | RequestExtended
    | RequestFulfilled
    | RequestRejected
    | RecipientNotified
)
AnySubmission = (
    ConsentRequestedIn
    | ConsentConfirmedIn
    | ConsentGivenIn
    | ConsentWithdrawnIn
    | ConsentExpiredIn
    | ObjectionReceivedIn
    | RestrictionAppliedIn
    | RestrictionLiftedIn
    | RectifiedIn
    | ErasedIn
    | ExportedIn
    | AccessedIn
    | RequestReceivedIn
    | IdentityVerifiedIn
    | RequestExtendedIn
    | RequestFulfilledIn
    | RequestRejectedIn
    | RecipientNotifiedIn
)
Event = Annotated[AnyEvent, Field(discriminator="type")]
SubmissionIn = Annotated[AnySubmission, Field(discriminator="type")]


def type_tag(model: type[Envelope] | type[Submission]) -> str:
    """The ``type`` value of an event model (its ``Literal`` tag)."""
    (tag,) = get_args(model.model_fields["type"].annotation)
    return str(tag)


def purpose_of(event: AnyEvent) -> str | None:
    """The purpose a purpose-level event names; ``None`` for events about the whole person."""
    purpose = getattr(event, "purpose", None)
    return purpose if isinstance(purpose, str) else None


#: The stored model of each event type, by its tag, in catalogue order.
EVENT_TYPES: dict[str, type[Envelope]] = {type_tag(m): m for m in get_args(AnyEvent)}
#: The producer-side model of each event type, by its tag.
SUBMISSION_TYPES: dict[str, type[Submission]] = {type_tag(m): m for m in get_args(AnySubmission)}

SUBMISSION_ADAPTER: TypeAdapter[AnySubmission] = TypeAdapter(SubmissionIn)
EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(Event)
