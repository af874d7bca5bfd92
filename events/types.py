"""Field types shared by several event types."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StringConstraints

from events.envelope import NoNul, NoPersonalData

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
Channel = Literal[
    "unsubscribe_link", "web_form", "email", "letter", "phone", "in_person", "api", "automated"
]
RequestId = Annotated[UUID, Field(description="The rights request this event belongs to.")]
Reasons = Annotated[
    str,
    StringConstraints(min_length=1, max_length=4000, strip_whitespace=True),
    NoNul,
    NoPersonalData,
    Field(
        description="Reasons as told to the person. Part of the legal record: write them "
        "without personal data (name the request, not the person)."
    ),
]
