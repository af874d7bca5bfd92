"""How the ledger names a caller in events: fields in clear, so never with personal data."""

from __future__ import annotations

import pytest

from events.identifiers import personal_data_in
from services.access.tokens import Caller


def caller(label: str, token_id: str = "0a1b2c3d4e5f") -> Caller:
    return Caller(token_id, "dpo", frozenset(), label)


def test_a_caller_is_named_by_label_and_token() -> None:
    assert caller("newsletter tool").name == "newsletter tool (token clt.0a1b2c3d4e5f)"


@pytest.mark.parametrize("label", ["jane@example.com", "Maija 040 1234567", "host 10.0.0.7"])
def test_a_label_given_before_labels_were_checked_is_left_out(label: str) -> None:
    assert caller(label).name == "token clt.0a1b2c3d4e5f"


def test_a_token_id_of_only_digits_looks_like_no_phone_number() -> None:
    assert personal_data_in(caller("make run (local stack)", "123456789012").name) is None
