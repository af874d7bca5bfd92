"""The plain-address fast path gives exactly what pydantic's EmailStr (email-validator) gives."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, EmailStr, TypeAdapter, ValidationError
from pydantic.networks import validate_email

from events.addresses import PLAIN, EmailAddress, normalised_email, plain_normalised
from events.envelope import PersonalData


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.from_regex(PLAIN, fullmatch=True))
def test_every_plain_address_the_fast_path_takes_is_one_email_validator_accepts_alike(
    address: str,
) -> None:
    fast = plain_normalised(address)
    if fast is not None:
        assert fast == validate_email(address)[1]


@pytest.mark.parametrize(
    ("address", "normalised"),
    [
        ("Maija.Meikalainen@Example.FI", "Maija.Meikalainen@example.fi"),
        ("a+tag@sub.example.com", "a+tag@sub.example.com"),
        ("x@xn--80ak6aa92e.com", "x@\u0430\u0440\u0440\u04cf\u0435.com"),  # punycode
        ("Maija <maija@example.fi>", "maija@example.fi"),  # a "pretty" address, as EmailStr
        ("käyttäjä@esimerkki.fi", "käyttäjä@esimerkki.fi"),
    ],
)
def test_addresses_are_normalised_as_emailstr_does(address: str, normalised: str) -> None:
    assert normalised_email(address) == normalised
    assert TypeAdapter(EmailStr).validate_python(address) == normalised


@pytest.mark.parametrize(
    "address",
    ["a@localhost", "a@b.test", "a@mail.onion", "a..b@example.com", "a@-x.com", "a@x", "@x.com"],
)
def test_invalid_addresses_are_refused_with_emailstrs_error(address: str) -> None:
    with pytest.raises(ValidationError) as ours:
        TypeAdapter(EmailAddress).validate_python(address)
    with pytest.raises(ValidationError) as theirs:
        TypeAdapter(EmailStr).validate_python(address)
    assert ours.value.errors()[0]["msg"] == theirs.value.errors()[0]["msg"]


def test_the_json_schema_is_emailstrs() -> None:
    class Theirs(BaseModel):
        email: EmailStr | None = None

    assert (
        PersonalData.model_json_schema()["properties"]["email"]
        == (Theirs.model_json_schema()["properties"]["email"])
    )
