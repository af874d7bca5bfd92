"""Events about the whole person, not one purpose: restriction, rectification, erasure,
exports and reads of personal data (GDPR Art. 15-18, 20, 5(2))."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, ValidationInfo, model_validator

from events.envelope import (
    Envelope,
    PersonalData,
    PurposeId,
    ShortText,
    Strict,
    Submission,
    from_log,
)
from events.types import RequestId


class RestrictionAppliedData(Strict):
    grounds: Literal[
        "accuracy_contested", "unlawful_processing", "legal_claims", "objection_pending"
    ] = Field(description="Art. 18(1) (a)-(d).")
    request_id: RequestId | None = None


class RestrictionLiftedData(Strict):
    reason: Literal["accuracy_verified", "objection_decided", "no_longer_needed", "other"]
    request_id: RequestId | None = None


class RectifiedData(Strict):
    fields: list[Literal["email"]] = Field(
        min_length=1, description="Which personal data fields were corrected."
    )
    request_id: RequestId | None = None


class ErasedData(Strict):
    grounds: Literal[
        "consent_withdrawn", "objection", "request", "retention", "unlawful", "other"
    ] = Field(description="Art. 17(1) ground, or the register's retention rule.")
    purpose: PurposeId | None = Field(
        default=None, description="The purpose whose retention rule caused the erasure, if any."
    )
    request_id: RequestId | None = None
    key_generation: int | None = Field(
        default=None,
        ge=0,
        description="Set by the ledger: the subject's data keys up to this generation are "
        "destroyed (crypto-shredding); events sealed under them no longer open.",
    )


class ExportedData(Strict):
    kind: Literal["access", "portability"] = Field(description="Art. 15 access or Art. 20.")
    formats: list[Literal["json", "csv"]] = Field(min_length=1)
    request_id: RequestId | None = None


class AccessedData(Strict):
    reader: ShortText = Field(description="The API token that read (its id and label).")
    role: ShortText = Field(description="The token's role.")
    scope: Literal["subject", "history"] = Field(description="What was read.")
    reason: ShortText = Field(description="Why, as the reader gave it.")


class RestrictionAppliedBody(Strict):
    type: Literal["restriction.applied"]
    data: RestrictionAppliedData


class RestrictionLiftedBody(Strict):
    type: Literal["restriction.lifted"]
    data: RestrictionLiftedData


class RectifiedBody(Strict):
    type: Literal["subject.rectified"]
    data: RectifiedData

    @model_validator(mode="after")
    def _carries_the_new_values(self, info: ValidationInfo) -> Self:
        if from_log(info):
            return self  # checked on intake; erasure may have removed the values since
        personal: PersonalData = getattr(self, "personal", PersonalData())
        if "email" in self.data.fields and personal.email is None:
            raise ValueError("personal.email: the corrected e-mail address is required")
        return self


class ErasedBody(Strict):
    type: Literal["subject.erased"]
    data: ErasedData

    @model_validator(mode="after")
    def _carries_no_personal_data(self) -> Self:
        if getattr(self, "personal", PersonalData()) != PersonalData():
            raise ValueError("personal: an erasure event must not carry personal data")
        return self


class ExportedBody(Strict):
    type: Literal["subject.exported"]
    data: ExportedData


class AccessedBody(Strict):
    type: Literal["subject.accessed"]
    data: AccessedData


class RestrictionAppliedIn(RestrictionAppliedBody, Submission): ...


class RestrictionLiftedIn(RestrictionLiftedBody, Submission): ...


class RectifiedIn(RectifiedBody, Submission): ...


class ErasedIn(ErasedBody, Submission): ...


class ExportedIn(ExportedBody, Submission): ...


class AccessedIn(AccessedBody, Submission): ...


class RestrictionApplied(RestrictionAppliedBody, Envelope):
    """Processing is restricted (Art. 18): the person is eligible for no purpose meanwhile."""


class RestrictionLifted(RestrictionLiftedBody, Envelope):
    """A restriction ended; eligibility is as the purposes' own events say."""


class Rectified(RectifiedBody, Envelope):
    """The person's data was corrected (Art. 16); ``personal`` holds the new values. The
    subject id, and so the person's history, stays the same."""


class Erased(ErasedBody, Envelope):
    """The person's personal data was erased (Art. 17). Projections keep a non-identifying
    trace; only a fresh explicit consent makes the person eligible again."""


class Exported(ExportedBody, Envelope):
    """Everything held about the person was exported to them (Art. 15 or 20)."""


class Accessed(AccessedBody, Envelope):
    """Someone read the person's personal data through the API: who, when, what and why."""
