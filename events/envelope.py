"""The envelope every ledger event shares.

Producers send a :class:`Submission`; the ledger adds the event id, the schema version and the
time it recorded the event, giving an :class:`Envelope`. Personal data (e-mail, IP address,
user agent, free text) lives only in :class:`PersonalData`, one section apart from the rest. In
the log that section is :class:`Sealed`: encrypted per subject, and shredded on erasure by
destroying the key, without touching any other field (see :mod:`events.sealing`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, ClassVar, Literal, Self
from urllib.parse import unquote
from uuid import UUID

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from events.addresses import EmailAddress
from events.identifiers import personal_data_in

#: Validation context key: the event comes from the log, so clock-relative checks and rules added
#: since it was recorded are skipped (a replay years later must accept what intake accepted).
FROM_LOG = "from_log"
#: Events older than this are surely a typo (a year of 0024 or 1924).
EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
#: Producers' clocks drift; more than this in the future is a bad date, not drift.
MAX_CLOCK_SKEW = timedelta(minutes=5)


def from_log(info: ValidationInfo) -> bool:
    """Whether the event is read back from the log: what intake accepted then is accepted now,
    though a rule added since would refuse it."""
    return isinstance(info.context, dict) and bool(info.context.get(FROM_LOG))


def _no_at(value: object, info: ValidationInfo) -> object:
    """A subject id travels in clear (Kafka keys, URLs, logs): anything with an ``@`` may be an
    address, ``x@localhost`` too. Checked before the pattern, so that the reason names the
    ``@``; ids read from the log predate the rule and are kept."""
    if isinstance(value, str) and "@" in value and not from_log(info):
        raise ValueError(
            "must not contain '@' (a subject id must not be an e-mail address); "
            "name the person by personal.email"
        )
    return value


#: What producers may send (and the JSON Schemas say); the log may also hold older ids with ``@``
#: in them, which the validation pattern still lets through for :func:`_no_at` to judge.
SUBJECT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
SubjectId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"),
    BeforeValidator(_no_at),
    Field(
        description="Stable pseudonymous id of the person (CRM id or UUID); never an e-mail.",
        examples=["crm-000123"],
        json_schema_extra={"pattern": SUBJECT_ID_PATTERN},
    ),
]
PurposeId = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$"),
    Field(description="Purpose of processing, as named in the register.", examples=["newsletter"]),
]
B64URL = r"^[A-Za-z0-9_-]+$"


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


#: Free text must be storable everywhere the event goes (PostgreSQL text and jsonb refuse NUL).
NoNul = AfterValidator(_no_nul)


def _refuse_personal_data(text: str, info: ValidationInfo) -> None:
    kind = personal_data_in(text)
    if kind is not None and not from_log(info):
        raise ValueError(f"must not contain personal data (looks like {kind}); put it in personal")


def _no_personal_data(value: str, info: ValidationInfo) -> str:
    """Only ``personal`` is sealed and shredded on erasure: anything else stays in clear."""
    _refuse_personal_data(value, info)
    return value


def _no_personal_data_in_url(value: AnyHttpUrl, info: ValidationInfo) -> AnyHttpUrl:
    """As :func:`_no_personal_data`, on the decoded URL (``jane%40example.com`` in a query)."""
    _refuse_personal_data(unquote(str(value)), info)
    return value


#: Every free string outside ``personal``.
NoPersonalData = AfterValidator(_no_personal_data)
#: Short text of any content: the register's entries (an authority's or a recipient's own
#: contact details are no data subject's), which events do not copy unchecked.
ShortString = Annotated[
    str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True), NoNul
]
#: Short text in an event (or what becomes one, such as a token label), in clear for good.
ShortText = Annotated[ShortString, NoPersonalData]
#: A URL outside ``personal`` (where the person saw a form), with no address in it.
PlainUrl = Annotated[AnyHttpUrl, AfterValidator(_no_personal_data_in_url)]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


def _not_impossible(value: datetime, info: ValidationInfo) -> datetime:
    """Reject dates no real event can have; events read back from the log were checked."""
    if from_log(info):
        return value
    if value < EARLIEST_OCCURRED_AT:
        raise ValueError(f"must not be before {EARLIEST_OCCURRED_AT.date().isoformat()}")
    if value > datetime.now(UTC) + MAX_CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return value


OccurredAt = Annotated[
    UtcDatetime,
    AfterValidator(_not_impossible),
    Field(description="When it happened, with a UTC offset; stored in UTC."),
]


class Strict(BaseModel):
    """Base of every wire model: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    """Which system sent the event, and who (a person or a process) acted in it."""

    system: ShortText = Field(examples=["signup-form"])
    actor: ShortText = Field(examples=["web-visitor"])


class PersonalData(Strict):
    """Everything in an event that identifies a person; kept apart so it can be shredded."""

    email: EmailAddress | None = None
    ip_address: IPv4Address | IPv6Address | None = None
    user_agent: Annotated[str, StringConstraints(max_length=1000), NoNul] | None = None
    note: Annotated[str, StringConstraints(max_length=4000), NoNul] | None = Field(
        default=None, description="Free text (a phone note, a letter's wording)."
    )


class Sealed(Strict):
    """The personal section as the log stores it: ciphertext under the subject's data key
    (see :mod:`events.sealing`). Erasure destroys the key, and this no longer opens."""

    alg: Literal["A256GCM"] = "A256GCM"
    key_generation: int = Field(ge=1, description="Which of the subject's data keys sealed it.")
    nonce: str = Field(pattern=B64URL, description="96-bit nonce, base64url without padding.")
    ciphertext: str = Field(pattern=B64URL, description="Ciphertext and tag, base64url.")


class Submission(Strict):
    """Fields a producer sends for any event type."""

    subject_id: SubjectId | None = Field(
        default=None,
        description="The person's id; may be left out when personal.email names the person "
        "(the ledger then finds or mints the id through its keyed identity index).",
    )
    occurred_at: OccurredAt
    source: Source
    correlation_id: UUID | None = Field(
        default=None, description="Groups the events of one business process."
    )
    causation_id: UUID | None = Field(
        default=None, description="The event id that caused this event, if any."
    )
    personal: PersonalData = Field(default_factory=PersonalData)

    @model_validator(mode="after")
    def _names_the_person(self) -> Self:
        if self.subject_id is None and self.personal.email is None:
            raise ValueError("subject_id: required, unless personal.email names the person")
        return self


class Envelope(Submission):
    """A recorded event: the submission plus what the ledger adds on append."""

    #: Version 2: the personal section is sealed (``sealed``) and ``personal`` is empty in the
    #: log. Version 1 events carried ``personal`` in clear and are read as they are.
    SCHEMA_VERSION: ClassVar[int] = 2

    subject_id: SubjectId
    event_id: UUID = Field(description="Time-ordered id (UUIDv7) minted by the ledger.")
    schema_version: int = Field(ge=1, description="Version of this event type's schema.")
    recorded_at: UtcDatetime = Field(description="When the ledger recorded the event (UTC).")
    sealed: Sealed | None = Field(
        default=None,
        description="The personal section, encrypted per subject; absent when there is none.",
    )
