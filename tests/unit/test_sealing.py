"""Crypto-shredding primitives: sealed sections open only with their key, in their own event."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from events.codec import decode, encode
from events.envelope import PersonalData
from events.ids import uuid7
from events.sealing import (
    DataKey,
    MasterKey,
    TamperedError,
    open_event,
    reveal,
    seal,
    seal_event,
    unseal,
)
from services.privacy.identity import normalise
from tests.samples import given_event

PERSONAL = PersonalData(email="maija@example.fi", ip_address="192.0.2.7", user_agent="Firefox")


def _flip(text: str) -> str:
    """The same base64url text with one bit of its first byte changed."""
    raw = bytearray(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    raw[0] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_a_sealed_event_holds_no_personal_data_and_opens_with_its_key() -> None:
    event = given_event("crm-7")
    key = DataKey.generate("crm-7", 1)
    sealed = seal_event(event, key)
    data = encode(sealed)
    for secret in (b"crm-7@example.com", b"192.0.2.7"):
        assert secret not in data
    back = decode(data)
    assert back.personal == PersonalData()
    assert open_event(back, key).personal == event.personal
    assert open_event(back, None).personal == PersonalData(), "a shredded key leaves it empty"


@given(
    email=st.emails(),
    # Any text a person can write: lone surrogates are not text (refused, see below).
    note=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=200),
)
def test_any_personal_section_round_trips(email: str, note: str) -> None:
    personal = PersonalData.model_validate({"email": email, "note": note})
    key = DataKey.generate("s-1", 3)
    event_id = uuid7()
    assert unseal(seal(personal, key, event_id), key, event_id) == personal


def test_a_note_that_is_not_unicode_is_refused_by_name() -> None:
    with pytest.raises(ValidationError) as refused:
        PersonalData.model_validate({"note": "half a pair \ud800"})
    (error,) = refused.value.errors()
    assert error["loc"] == ("note",)
    assert error["type"] == "string_unicode"


def test_a_changed_ciphertext_nonce_or_binding_is_refused() -> None:
    key = DataKey.generate("crm-1", 1)
    event_id = uuid7()
    sealed = seal(PERSONAL, key, event_id)
    tampered = [
        sealed.model_copy(update={"ciphertext": _flip(sealed.ciphertext)}),
        sealed.model_copy(update={"nonce": _flip(sealed.nonce)}),
    ]
    for bad in tampered:
        with pytest.raises(TamperedError):
            unseal(bad, key, event_id)
    with pytest.raises(TamperedError, match="changed"):
        unseal(sealed, key, uuid7())  # moved to another event
    with pytest.raises(TamperedError):
        unseal(sealed, DataKey("crm-2", 1, key.secret), event_id)  # moved to another person
    with pytest.raises(TamperedError):
        unseal(sealed, DataKey.generate("crm-1", 1), event_id)  # another key


def test_a_data_key_unwraps_only_with_its_master_and_binding() -> None:
    master, other = MasterKey(b"m" * 32), MasterKey(b"n" * 32)
    key = DataKey.generate("crm-1", 2)
    wrapped = master.wrap(key)
    assert master.unwrap("crm-1", 2, wrapped) == key
    for opener, subject, generation in ((other, "crm-1", 2), (master, "crm-1", 1),
                                        (master, "crm-9", 2)):  # fmt: skip
        with pytest.raises(TamperedError):
            opener.unwrap(subject, generation, wrapped)
    assert master.key_id != other.key_id


def test_a_master_key_is_read_from_base64_and_checked() -> None:
    text = MasterKey.generate_text()
    assert MasterKey.from_text(text + "\n").key_id == MasterKey.from_text(text).key_id
    with pytest.raises(ValueError, match="32 bytes"):
        MasterKey.from_text(base64.b64encode(b"short").decode())


def test_reveal_says_why_personal_data_is_not_shown() -> None:
    key = DataKey.generate("crm-7", 1)
    payload = orjson.loads(encode(seal_event(given_event("crm-7"), key)))
    assert reveal(payload, key, allowed=True)["personal"]["email"] == "crm-7@example.com"
    assert reveal(payload, key, allowed=True)["personal_state"] == "open"
    assert reveal(payload, key, allowed=False)["personal_state"] == "withheld"
    assert reveal(payload, None, allowed=True)["personal_state"] == "shredded"
    for state in ("withheld", "shredded"):
        shown = reveal(payload, None, allowed=state == "shredded")
        assert "personal" not in shown
        assert "sealed" not in shown
        assert shown["type"] == "consent.given"
        assert shown["occurred_at"] == payload["occurred_at"]
    plain = orjson.loads(encode(given_event("crm-8")))  # schema version 1 style: in clear
    assert reveal(plain, None, allowed=True)["personal_state"] == "open"


def test_addresses_are_normalised_before_keyed_hashing() -> None:
    assert normalise("  Maija.Meikalainen@Example.FI ") == "maija.meikalainen@example.fi"
