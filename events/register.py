"""The register: the controller's own description of what it processes, and why.

One TOML file per register (the shipped example is ``events/registers/seiverkot-newsletter.toml``,
which documents every key). The ledger checks events against it: a consent must name a known
purpose, a notice version that was published for it, and a lawful basis the purpose allows. Rights
requests take their time zone (the date of receipt, Art. 12(3)), their supervisory authority (the
address on a refusal) and their Art. 19 recipients from it.

Everything here is pure: the file is read once by :func:`load_register`, and the models are frozen.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from events.envelope import PurposeId, ShortString, Strict
from events.types import Language, LegalBasis, NoticeVersion

#: The register that ships with the product (the seed), inside the ``events`` package.
DEFAULT_REGISTER = "seiverkot-newsletter.toml"

#: Art. 19: the actions each recipient must be told of.
NotifyAction = Literal["rectification", "erasure", "restriction"]
NOTIFY_ACTIONS: tuple[NotifyAction, ...] = get_args(NotifyAction)
#: What ends a purpose's data: the consent withdrawn, an objection, or the consent lapsing.
EraseOn = Literal["withdrawal", "objection", "expiry"]
#: Art. 4(8)-(10), Art. 26: what a recipient is to the controller.
RecipientRole = Literal["processor", "joint_controller", "controller", "third_party"]
LEGAL_BASES: tuple[LegalBasis, ...] = get_args(LegalBasis)

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value


def _sha256_hex(value: str) -> str:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError("must be 64 lowercase hex characters (the SHA-256 of the notice text)")
    return value


def _unique(values: list[str]) -> list[str]:
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise ValueError(f"listed more than once: {', '.join(duplicates)}")
    return values


Url = Annotated[str, AfterValidator(_http_url)]
Sha256Hex = Annotated[str, AfterValidator(_sha256_hex)]


def _problem(key: str, reason: str) -> PydanticCustomError:
    """A cross-field error that keeps its key, relative to the model raising it (a model
    validator's error has only the model's own location)."""
    return PydanticCustomError("register", "{key}: {reason}", {"key": key, "reason": reason})


def _finnish_business_id_ok(value: str) -> bool:
    """Y-tunnus: seven digits, a dash, a check digit (weights 7 9 10 5 8 4 2, modulo 11)."""
    digits = value[:7] + value[8:]
    if len(value) != 9 or value[7] != "-" or any(c not in "0123456789" for c in digits):
        return False
    remainder = sum(int(d) * w for d, w in zip(value[:7], (7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    if remainder == 1:
        return False
    return int(value[8]) == (0 if remainder == 0 else 11 - remainder)


class Address(Strict):
    """A postal address, as printed on notices and refusals."""

    street: ShortString = Field(description="Street address or P.O. box.", examples=["PL 800"])
    postal_code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 -]{2,12}$")]
    city: ShortString
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = Field(
        description="ISO 3166-1 alpha-2 code.", examples=["FI"]
    )


class Controller(Strict):
    """Who decides the purposes (Art. 4(7)); named on every notice and receipt."""

    name: ShortString
    business_id: ShortString = Field(
        description="Company registration number; checked as a Y-tunnus when the country is FI."
    )
    address: Address
    dpo_contact: EmailStr = Field(description="Where rights requests and questions go.")
    privacy_notice_url: Url | None = None

    @model_validator(mode="after")
    def _business_id_checks(self) -> Controller:
        if self.address.country == "FI" and not _finnish_business_id_ok(self.business_id):
            raise _problem(
                "business_id",
                f"{self.business_id!r} is not a valid Finnish business ID (1234567-8, check digit)",
            )
        return self


class SupervisoryAuthority(Strict):
    """Where a person can complain (Art. 77); printed on every refusal (Art. 12(4))."""

    name: ShortString
    address: Address
    url: Url


class Recipient(Strict):
    """Someone the personal data is disclosed to (Art. 4(9)); told of corrections (Art. 19)."""

    id: Slug
    name: ShortString
    role: RecipientRole
    contact: ShortString | None = Field(default=None, description="Where Art. 19 notices go.")
    notify_on: Annotated[list[NotifyAction], AfterValidator(_unique)] = Field(
        description="Art. 19 actions this recipient is told of; leave one out only where "
        "telling them is impossible or disproportionate."
    )


class Notice(Strict):
    """One published version of the privacy notice; consents point at it (Art. 7(1))."""

    version: NoticeVersion
    language: Language
    url: Url
    sha256: Sha256Hex = Field(description="SHA-256 of the notice text's bytes: proves the wording.")
    published: date


class Retention(Strict):
    """When a purpose's data goes (Art. 5(1)(e), Art. 17(1))."""

    erase_on: Annotated[list[EraseOn], AfterValidator(_unique)]
    grace_days: int = Field(ge=0, description="Days kept after the trigger; 0 erases at once.")
    description: LongText = Field(description="The rule as the notice states it.")


class Purpose(Strict):
    """A purpose of processing with its lawful basis, data, notices and retention."""

    id: PurposeId
    name_fi: ShortString
    name_en: ShortString
    legal_basis: LegalBasis
    direct_marketing: bool = Field(
        description="Art. 21(3): an objection stops this processing, with no balancing test."
    )
    personal_data: Annotated[list[Slug], AfterValidator(_unique)] = Field(min_length=1)
    source: Annotated[list[Slug], AfterValidator(_unique)] = Field(min_length=1)
    recipients: Annotated[list[Slug], AfterValidator(_unique)] = Field(default_factory=list)
    notices: list[Notice]
    retention: Retention
    consent_validity_days: int | None = Field(
        default=None, ge=1, description="How long a consent lasts unless renewed."
    )

    @field_validator("notices")
    @classmethod
    def _notices_are_distinct(cls, notices: list[Notice]) -> list[Notice]:
        if not notices:
            raise ValueError("a purpose needs at least one notice ([[purposes.notices]])")
        versions = [n.version for n in notices]
        twice = sorted({v for v in versions if versions.count(v) > 1})
        if twice:
            raise ValueError(f"notice version listed more than once: {', '.join(twice)}")
        return notices

    @model_validator(mode="after")
    def _expiry_needs_a_lifetime(self) -> Purpose:
        if "expiry" in self.retention.erase_on and self.consent_validity_days is None:
            raise _problem(
                "retention.erase_on",
                "'expiry' needs consent_validity_days (how long a consent lasts)",
            )
        return self

    def notice(self, version: str) -> Notice | None:
        """The notice with that version, if it was published for this purpose."""
        return next((n for n in self.notices if n.version == version), None)

    @property
    def latest_notice(self) -> Notice:
        """The most recently published notice: the one new consents are collected under."""
        return max(self.notices, key=lambda n: n.published)

    def accepts(self, legal_basis: str) -> bool:
        """A consent purpose takes only consent; any purpose takes an explicit opt-in."""
        return legal_basis == "consent" or legal_basis == self.legal_basis


class Register(Strict):
    """The whole register: controller, authority, time zone, recipients and purposes."""

    controller: Controller
    supervisory_authority: SupervisoryAuthority
    time_zone: str = Field(
        description="IANA time zone deciding the date of receipt of rights requests.",
        examples=["Europe/Helsinki"],
    )
    recipients: list[Recipient] = Field(default_factory=list)
    purposes: list[Purpose] = Field(min_length=1)

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Helsinki)") from None
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> Register:
        recipient_ids = [r.id for r in self.recipients]
        for i, recipient in enumerate(self.recipients):
            if recipient.id in recipient_ids[:i]:
                raise _problem(f"recipients[{i}].id", f"duplicate recipient id {recipient.id!r}")
        seen: set[str] = set()
        for i, purpose in enumerate(self.purposes):
            if purpose.id in seen:
                raise _problem(f"purposes[{i}].id", f"duplicate purpose id {purpose.id!r}")
            seen.add(purpose.id)
            for j, rid in enumerate(purpose.recipients):
                if rid not in recipient_ids:
                    known = ", ".join(recipient_ids) or "none"
                    raise _problem(
                        f"purposes[{i}].recipients[{j}]",
                        f"unknown recipient {rid!r}; [[recipients]] has: {known}",
                    )
        return self

    @property
    def tz(self) -> ZoneInfo:
        """The register's time zone (ZoneInfo caches instances, so this is cheap)."""
        return ZoneInfo(self.time_zone)

    def purpose(self, purpose_id: str) -> Purpose | None:
        return next((p for p in self.purposes if p.id == purpose_id), None)

    def check_reference(
        self, purpose: str | None, notice_version: str | None, legal_basis: str | None
    ) -> list[tuple[str, str]]:
        """Problems, as (field, reason), with what an event says about its purpose.

        ``None`` means the event does not carry that field, so it is not checked; the notice
        version and the lawful basis can only be checked once the purpose is known.
        """
        if purpose is None:
            return []
        found = self.purpose(purpose)
        if found is None:
            known = ", ".join(sorted(p.id for p in self.purposes))
            return [("purpose", f"unknown purpose {purpose!r}; the register has: {known}")]
        problems: list[tuple[str, str]] = []
        if notice_version is not None and found.notice(notice_version) is None:
            known = ", ".join(n.version for n in found.notices)
            problems.append(
                (
                    "data.notice_version",
                    f"purpose {found.id} has no notice version {notice_version!r}; known: {known}",
                )
            )
        if legal_basis is not None:
            if legal_basis not in LEGAL_BASES:
                problems.append(
                    (
                        "data.legal_basis",
                        f"unknown lawful basis {legal_basis!r}; known: {', '.join(LEGAL_BASES)}",
                    )
                )
            elif not found.accepts(legal_basis):
                problems.append(
                    (
                        "data.legal_basis",
                        f"purpose {found.id} is based on {found.legal_basis}; "
                        f"{legal_basis} cannot be its lawful basis",
                    )
                )
        return problems

    def recipients_for(
        self, action: str, purposes: Collection[str] | None = None
    ) -> list[Recipient]:
        """Recipients to tell of an Art. 19 action, in register order.

        With ``purposes``, only recipients of those purposes (the ones that received the
        person's data). An unknown action is a programming error, so it raises ``ValueError``.
        """
        if action not in NOTIFY_ACTIONS:
            raise ValueError(
                f"unknown Art. 19 action {action!r}; known: {', '.join(NOTIFY_ACTIONS)}"
            )
        wanted: set[str] | None = None
        if purposes is not None:
            wanted = {rid for p in self.purposes if p.id in purposes for rid in p.recipients}
        return [
            r
            for r in self.recipients
            if action in r.notify_on and (wanted is None or r.id in wanted)
        ]


class RegisterError(ValueError):
    """The register file is unreadable or invalid; ``problems`` holds (key, reason) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(
            "\n".join(
                f"register {source}: {key}: {reason}" if key else f"register {source}: {reason}"
                for key, reason in problems
            )
        )


def _key(loc: tuple[int | str, ...]) -> str:
    """('purposes', 1, 'notices', 0, 'sha256') -> 'purposes[1].notices[0].sha256'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for item in error.errors():
        ctx: dict[str, Any] = item.get("ctx") or {}
        key = _key(item["loc"])
        if item["type"] == "register":
            key = f"{key}.{ctx['key']}" if key else str(ctx["key"])
            reason = str(ctx["reason"])
        elif item["type"] == "value_error" and "error" in ctx:
            reason = str(ctx["error"])  # our own ValueError, without "Value error, "
        else:
            reason = item["msg"]
        problems.append((key, reason))
    return problems


def parse_register(text: str, source: str = "<string>") -> Register:
    """Parse and validate a register from TOML text; ``source`` names it in errors."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegisterError(source, [("", f"not valid TOML: {exc}")]) from exc
    try:
        return Register.model_validate(raw)
    except ValidationError as exc:
        raise RegisterError(source, _problems(exc)) from exc


def load_register(path: Path | None = None) -> Register:
    """Read and validate a register file; ``None`` reads the one shipped with the product."""
    if path is None:
        source = f"events/registers/{DEFAULT_REGISTER}"
        resource = resources.files("events").joinpath("registers", DEFAULT_REGISTER)
        data = resource.read_bytes()
    else:
        source = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RegisterError(source, [("", f"cannot read: {exc.strerror or exc}")]) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RegisterError(source, [("", f"not UTF-8: {exc}")]) from exc
    return parse_register(text, source)
