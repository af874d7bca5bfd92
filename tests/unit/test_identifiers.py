"""The personal data detector: addresses and phone numbers are found anywhere in a text; what
legitimately fills the ledger's clear fields (dates, versions, UUIDs, business ids) is not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.identifiers import EMAIL, IP_ADDRESS, PHONE, personal_data_in

#: Text around an identifier, kept apart from it by a space: anything without an e-mail address
#: (which would be found first).
AROUND = st.text(st.characters(exclude_characters="@"), max_size=30)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("jane@example.com", EMAIL),
        ("x@localhost", EMAIL),
        ("käyttäjä@esimerkki.fi", EMAIL),
        ("signed up by Maija <maija@example.fi>", EMAIL),
        ("https://sen.fi/tilaa?email=jane@example.com", EMAIL),
        ("10.0.0.1", IP_ADDRESS),
        ("from 192.168.1.20.", IP_ADDRESS),
        ("10.0.0.1:8080", IP_ADDRESS),
        ("https://203.0.113.9/form", IP_ADDRESS),
        ("2001:db8::1", IP_ADDRESS),
        ("http://[::1]:8080/", IP_ADDRESS),
        ("fe80::1%eth0", IP_ADDRESS),
        ("::ffff:192.0.2.7", IP_ADDRESS),
        ("+358 40 123 4567", PHONE),
        ("040 1234567", PHONE),
        ("0401234567", PHONE),
        ("(09) 123 4567", PHONE),
        ("call 040-123-4567 after 10:00", PHONE),
        ("tel:+35840123456", PHONE),
        ("+1 (555) 123-4567", PHONE),
    ],
)
def test_personal_data_is_found(text: str, kind: str) -> None:
    assert personal_data_in(text) == kind


@pytest.mark.parametrize(
    "text",
    [
        "2022-02-22",
        "2024-03-04T10:00:00Z",
        "2024-03-04 10:00",
        "22.2.2022 klo 10:00:00",
        "seiverkot-2022-02-22",
        "01a2145e-bae9-706e-a524-6315bf1696f6",
        "12345678-1234-1234-1234-123456789012",
        "https://tietosuoja.fi",
        "https://sen.fi:8443/tilaa?kampanja=2024-03",
        "Y-tunnus 2083762-5",
        "PL 800, 00521 Helsinki",
        "version 1.2.3",
        "signup-form@1.4.2",
        "std::string",
        "aa:bb:cc:dd:ee:ff",
        "12:30-14:00",
        "art19-notifier",
        "make run (local stack) (token clt.123456789012)",
        "Tietosuojavaltuutetun toimisto (Office of the Data Protection Ombudsman), "
        "https://tietosuoja.fi",
        "@dpo",
    ],
)
def test_what_fills_clear_fields_is_not_personal_data(text: str) -> None:
    assert personal_data_in(text) is None


@given(AROUND, st.emails(), AROUND)
def test_an_email_address_is_found_in_any_text(before: str, address: str, after: str) -> None:
    assert personal_data_in(f"{before} {address} {after}") == EMAIL


@given(AROUND, st.ip_addresses(), AROUND)
def test_an_ip_address_is_found_in_any_text(before: str, address: object, after: str) -> None:
    assert personal_data_in(f"{before} {address} {after}") == IP_ADDRESS


@given(st.from_regex(r"\+358 ?[1-9]\d(?:[ -]?\d{3}){2,3}", fullmatch=True))
def test_an_international_phone_number_is_found(number: str) -> None:
    assert personal_data_in(f"soitti numerosta {number}.") == PHONE
