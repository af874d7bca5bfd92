"""The register file: the shipped seed register, validation errors that name their key, and
the checks events are put through."""

from __future__ import annotations

import hashlib
from datetime import date
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from events.register import Register, RegisterError, load_register, parse_register

SHIPPED = resources.files("events").joinpath("registers", "seiverkot-newsletter.toml")
NOTICE_TEXT = resources.files("events").joinpath(
    "registers", "notices", "seiverkot-2022-02-22.fi.txt"
)

MINIMAL = """
time_zone = "UTC"

[controller]
name = "Example Ltd"
business_id = "12345"
dpo_contact = "dpo@example.com"
[controller.address]
street = "Main Street 1"
postal_code = "1000"
city = "Brussels"
country = "BE"

[supervisory_authority]
name = "Authority"
url = "https://authority.example"
[supervisory_authority.address]
street = "Rue 1"
postal_code = "1000"
city = "Brussels"
country = "BE"

[[purposes]]
id = "newsletter"
name_fi = "Uutiskirje"
name_en = "Newsletter"
legal_basis = "consent"
direct_marketing = true
personal_data = ["email"]
source = ["signup_form"]
{notices}
[purposes.retention]
erase_on = ["withdrawal"]
grace_days = 0
description = "Erased on withdrawal."
"""
NOTICE = """
[[purposes.notices]]
version = "{version}"
language = "en"
url = "https://example.com/privacy"
sha256 = "{sha}"
published = 2024-01-01
"""
SHA = "0" * 64


@pytest.fixture(scope="module")
def register() -> Register:
    return load_register()


def shipped_with(old: str, new: str, count: int = 1) -> str:
    text = SHIPPED.read_text(encoding="utf-8")
    assert text.count(old) >= count, f"{old!r} is not in the shipped register"
    return text.replace(old, new, count)


def problems_of(text: str, tmp_path: Path) -> RegisterError:
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RegisterError) as caught:
        load_register(path)
    assert str(path) in str(caught.value), "the message names the file"
    return caught.value


# --- the shipped register ---------------------------------------------------------------


def test_the_default_register_is_the_seed(register: Register) -> None:
    c = register.controller
    assert (c.name, c.business_id, c.dpo_contact) == (
        "Seiverkot Oy",
        "2083762-5",
        "tietosuojavastaava@sen.fi",
    )
    assert (c.address.street, c.address.postal_code, c.address.city, c.address.country) == (
        "Varastotie 5",
        "60100",
        "Seinäjoki",
        "FI",
    )
    authority = register.supervisory_authority
    assert authority.name.startswith("Tietosuojavaltuutetun toimisto")
    assert (authority.address.street, authority.address.postal_code) == ("PL 800", "00521")
    assert authority.url == "https://tietosuoja.fi"
    assert register.tz == ZoneInfo("Europe/Helsinki")


def test_the_seed_purposes_and_their_bases(register: Register) -> None:
    bases = {p.id: (p.legal_basis, p.direct_marketing) for p in register.purposes}
    assert bases == {
        "newsletter": ("legitimate_interest", True),
        "analytics": ("consent", False),
        "analytics_demographics": ("consent", False),
    }
    newsletter = register.purpose("newsletter")
    assert newsletter is not None
    assert newsletter.personal_data == ["email"]
    assert newsletter.source == ["crm", "signup_form"]
    assert newsletter.recipients == ["newsletter_tool"]
    assert newsletter.retention.erase_on == ["withdrawal", "objection"]
    assert newsletter.retention.grace_days == 0
    assert newsletter.consent_validity_days is None
    analytics = register.purpose("analytics")
    assert analytics is not None
    assert analytics.consent_validity_days == 395
    assert "expiry" in analytics.retention.erase_on
    demographics = register.purpose("analytics_demographics")
    assert demographics is not None
    assert demographics.personal_data == ["age", "gender", "interests"]
    assert register.purpose("nope") is None


def test_the_notice_hash_is_the_shipped_notice_text(register: Register) -> None:
    digest = hashlib.sha256(NOTICE_TEXT.read_bytes()).hexdigest()
    for purpose in register.purposes:
        notice = purpose.notice("2022-02-22")
        assert notice is not None
        assert notice.sha256 == digest
        assert (notice.language, notice.published) == ("fi", date(2022, 2, 22))
        assert purpose.latest_notice == notice
    assert "Seiverkot Oy (2083762-5)" in NOTICE_TEXT.read_text(encoding="utf-8")


def test_models_are_frozen(register: Register) -> None:
    with pytest.raises(ValueError, match="frozen"):
        register.controller.name = "Someone else"  # type: ignore[misc]


# --- checks on what an event refers to --------------------------------------------------


def test_a_known_reference_has_no_problems(register: Register) -> None:
    assert register.check_reference("newsletter", "2022-02-22", "legitimate_interest") == []
    assert register.check_reference("analytics", "2022-02-22", "consent") == []
    assert register.check_reference(None, None, None) == []
    assert register.check_reference("newsletter", None, None) == []


def test_an_unknown_purpose_lists_the_known_ones(register: Register) -> None:
    assert register.check_reference("newzletter", "2022-02-22", "consent") == [
        (
            "purpose",
            "unknown purpose 'newzletter'; the register has: "
            "analytics, analytics_demographics, newsletter",
        )
    ]


def test_an_unknown_notice_version_lists_the_known_ones(register: Register) -> None:
    assert register.check_reference("newsletter", "2019", None) == [
        (
            "data.notice_version",
            "purpose newsletter has no notice version '2019'; known: 2022-02-22",
        )
    ]


def test_a_consent_purpose_takes_only_consent(register: Register) -> None:
    assert register.check_reference("analytics", None, "legitimate_interest") == [
        (
            "data.legal_basis",
            "purpose analytics is based on consent; legitimate_interest cannot be its lawful basis",
        )
    ]


def test_a_legitimate_interest_purpose_also_takes_an_explicit_opt_in(register: Register) -> None:
    assert register.check_reference("newsletter", None, "consent") == []


def test_an_unknown_legal_basis_is_a_problem(register: Register) -> None:
    [(field, reason)] = register.check_reference("newsletter", None, "contract")
    assert field == "data.legal_basis"
    assert "unknown lawful basis 'contract'" in reason


def test_every_problem_is_reported_at_once(register: Register) -> None:
    fields = [f for f, _ in register.check_reference("analytics", "x", "legitimate_interest")]
    assert fields == ["data.notice_version", "data.legal_basis"]


def test_recipients_for_an_art19_action(register: Register) -> None:
    for action in ("rectification", "erasure", "restriction"):
        assert [r.id for r in register.recipients_for(action)] == ["newsletter_tool"]
    assert [r.id for r in register.recipients_for("erasure", purposes={"analytics"})] == []
    assert [r.id for r in register.recipients_for("erasure", purposes=["newsletter"])] == [
        "newsletter_tool"
    ]
    with pytest.raises(ValueError, match=r"unknown Art\. 19 action 'deletion'"):
        register.recipients_for("deletion")


def test_recipients_not_notified_are_still_listed(register: Register) -> None:
    """Google Analytics receives data but cannot be told which records (Art. 19 'impossible')."""
    ga = next(r for r in register.recipients if r.id == "google_analytics")
    assert ga.notify_on == []
    analytics = register.purpose("analytics")
    assert analytics is not None
    assert analytics.recipients == ["google_analytics"]


# --- validation errors name their key ---------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        (
            'sha256 = "ed5e9be5d8da63a6db6784b23d833d783853f3207077b3eb937d3bbce2f4135f"\n'
            'published = 2022-02-22\n\n[purposes.retention]\nerase_on = ["withdrawal", "expiry"]',
            'sha256 = "ED5E"\npublished = 2022-02-22\n\n'
            '[purposes.retention]\nerase_on = ["withdrawal", "expiry"]',
            "purposes[1].notices[0].sha256",
            "64 lowercase hex characters",
        ),
        (
            'id = "analytics_demographics"',
            'id = "analytics"',
            "purposes[2].id",
            "duplicate purpose id 'analytics'",
        ),
        (
            'recipients = ["newsletter_tool"]',
            'recipients = ["newsletter_toll"]',
            "purposes[0].recipients[0]",
            "unknown recipient 'newsletter_toll'",
        ),
        ('id = "newsletter"', 'id = "News-letter"', "purposes[0].id", "pattern"),
        ('time_zone = "Europe/Helsinki"', 'time_zone = "Europe/Helsingfors"', "time_zone", "IANA"),
        ('time_zone = "Europe/Helsinki"', 'time_zone = "/etc/passwd"', "time_zone", "IANA"),
        (
            'business_id = "2083762-5"',
            'business_id = "2083762-4"',
            "controller.business_id",
            "Finnish business ID",
        ),
        (
            'business_id = "2083762-5"',
            'business_id = "2083762-5"\nphone = "029 56 66700"',
            "controller.phone",
            "Extra inputs are not permitted",
        ),
        (
            'dpo_contact = "tietosuojavastaava@sen.fi"',
            'dpo_contact = "tietosuojavastaava"',
            "controller.dpo_contact",
            "email",
        ),
        ('url = "https://tietosuoja.fi"', 'url = "tietosuoja.fi"', "supervisory_authority.url", ""),
        (
            'notify_on = ["rectification", "erasure", "restriction"]',
            'notify_on = ["rectification", "deletion"]',
            "recipients[0].notify_on[1]",
            "",
        ),
        (
            'notify_on = ["rectification", "erasure", "restriction"]',
            'notify_on = ["erasure", "erasure"]',
            "recipients[0].notify_on",
            "more than once: erasure",
        ),
        (
            'id = "google_analytics"',
            'id = "newsletter_tool"',
            "recipients[1].id",
            "duplicate recipient id",
        ),
        (
            "grace_days = 0",
            "grace_days = -1",
            "purposes[0].retention.grace_days",
            "greater than or equal to 0",
        ),
        (
            "consent_validity_days = 395 # default (13",
            "# consent_validity_days = 395 # default (13",
            "purposes[1].retention.erase_on",
            "'expiry' needs consent_validity_days",
        ),
        (
            'legal_basis = "legitimate_interest"',
            'legal_basis = "contract"',
            "purposes[0].legal_basis",
            "",
        ),
        (
            "published = 2022-02-22",
            'published = "last spring"',
            "purposes[0].notices[0].published",
            "",
        ),
    ],
)
def test_an_invalid_register_names_the_bad_key(
    tmp_path: Path, old: str, new: str, key: str, reason: str
) -> None:
    error = problems_of(shipped_with(old, new), tmp_path)
    keys = [k for k, _ in error.problems]
    assert key in keys, error
    assert f": {key}: " in str(error)
    assert reason in dict(error.problems)[key]


def test_a_purpose_needs_a_notice(tmp_path: Path) -> None:
    error = problems_of(MINIMAL.format(notices=""), tmp_path)
    assert error.problems == [("purposes[0].notices", "Field required")]
    error = problems_of(MINIMAL.format(notices="notices = []"), tmp_path)
    assert error.problems == [
        ("purposes[0].notices", "a purpose needs at least one notice ([[purposes.notices]])")
    ]


def test_notice_versions_are_unique_per_purpose(tmp_path: Path) -> None:
    twice = NOTICE.format(version="v1", sha=SHA) * 2
    error = problems_of(MINIMAL.format(notices=twice), tmp_path)
    assert error.problems == [("purposes[0].notices", "notice version listed more than once: v1")]


def test_a_minimal_register_outside_finland(tmp_path: Path) -> None:
    text = MINIMAL.format(notices=NOTICE.format(version="v1", sha=SHA))
    register = parse_register(text)
    assert register.recipients == []
    assert register.controller.business_id == "12345", "only FI business ids are checked"
    assert register.recipients_for("erasure") == []


def test_a_register_needs_a_purpose(tmp_path: Path) -> None:
    text = MINIMAL.split("[[purposes]]")[0]
    error = problems_of(text, tmp_path)
    assert [k for k, _ in error.problems] == ["purposes"]


def test_missing_keys_are_each_named(tmp_path: Path) -> None:
    error = problems_of(shipped_with('name = "Seiverkot Oy" # seed\n', ""), tmp_path)
    assert error.problems == [("controller.name", "Field required")]


def test_not_toml(tmp_path: Path) -> None:
    error = problems_of("time_zone = Europe/Helsinki", tmp_path)
    assert "not valid TOML" in str(error)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RegisterError, match=r"register .*nope\.toml: cannot read"):
        load_register(tmp_path / "nope.toml")
