"""The event types: one model per type, and the discriminated unions over them.

Each type is written once as a *body* (its ``type`` tag, purpose and data) and combined with
:class:`~events.envelope.Submission` for what producers send and with
:class:`~events.envelope.Envelope` for what the ledger stores.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, StringConstraints, TypeAdapter

from events.envelope import Envelope, PurposeId, Strict, Submission, UtcDatetime

LegalBasis = Literal["consent", "legitimate_interest"]
Language = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"),
    Field(description="BCP 47 language tag of the notice shown.", examples=["fi", "en"]),
]
NoticeVersion = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"),
    Field(description="Version of the privacy notice the person saw.", examples=["2022-02-22"]),
]


class ConsentGivenData(Strict):
    """How and under which notice the person agreed (GDPR Art. 7(1) evidence)."""

    notice_version: NoticeVersion
    language: Language
    legal_basis: LegalBasis = "consent"
    method: Literal["web_form", "checkbox", "double_opt_in", "paper", "phone", "crm_import"] = (
        Field(description="How the consent or the contact was collected.")
    )
    form_url: AnyHttpUrl | None = None
    valid_until: UtcDatetime | None = Field(
        default=None, description="When the consent lapses unless renewed."
    )


class ConsentWithdrawnData(Strict):
    """How the person withdrew (Art. 7(3): as easy as giving)."""

    channel: Literal["unsubscribe_link", "web_form", "email", "letter", "phone", "in_person", "api"]


class ConsentGivenBody(Strict):
    type: Literal["consent.given"]
    purpose: PurposeId
    data: ConsentGivenData


class ConsentWithdrawnBody(Strict):
    type: Literal["consent.withdrawn"]
    purpose: PurposeId
    data: ConsentWithdrawnData


class ConsentGivenIn(ConsentGivenBody, Submission):
    """A producer's ``consent.given``."""


class ConsentWithdrawnIn(ConsentWithdrawnBody, Submission):
    """A producer's ``consent.withdrawn``."""


class ConsentGiven(ConsentGivenBody, Envelope):
    """The person agreed to a purpose under a notice version."""


class ConsentWithdrawn(ConsentWithdrawnBody, Envelope):
    """The person withdrew their consent to (or objected to) a purpose."""


SubmissionIn = Annotated[ConsentGivenIn | ConsentWithdrawnIn, Field(discriminator="type")]
Event = Annotated[ConsentGiven | ConsentWithdrawn, Field(discriminator="type")]
AnyEvent = ConsentGiven | ConsentWithdrawn

#: The stored model of each event type, by its tag.
EVENT_TYPES: dict[str, type[Envelope]] = {
    "consent.given": ConsentGiven,
    "consent.withdrawn": ConsentWithdrawn,
}
#: The producer-side model of each event type, by its tag.
SUBMISSION_TYPES: dict[str, type[Submission]] = {
    "consent.given": ConsentGivenIn,
    "consent.withdrawn": ConsentWithdrawnIn,
}

SUBMISSION_ADAPTER: TypeAdapter[ConsentGivenIn | ConsentWithdrawnIn] = TypeAdapter(SubmissionIn)
EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(Event)
