"""Personal data only in ``personal``: every clear field of a submission refuses it, naming the
field; what the ledger writes itself passes; events already in the log still decode."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from events.catalog import SUBMISSION_ADAPTER
from events.codec import decode
from events.envelope import Envelope
from events.register import load_register, parse_register
from services.errors import describe
from services.intake.policy import LEDGER_SOURCE
from services.retention.job import RETENTION_SOURCE
from tests.samples import REQUEST_ID, valid_json


def refusal(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The errors as the HTTP API and the dead-letter topic describe them."""
    with pytest.raises(ValidationError) as caught:
        SUBMISSION_ADAPTER.validate_python(body)
    return describe(caught.value.errors())


def with_data(kind: str, **changes: Any) -> dict[str, Any]:
    body = valid_json(kind)
    return {**body, "data": {**body["data"], **changes}}


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        (valid_json("consent.given", source={"system": "s", "actor": "jane@example.com"}),
         "source.actor", "an e-mail address"),
        (valid_json("consent.given", source={"system": "10.0.0.7", "actor": "web"}),
         "source.system", "an IP address"),
        (with_data("request.received", received_by="+358 40 123 4567"),
         "data.received_by", "a phone number"),
        (with_data("request.extended", reasons="asked by maija@example.fi"),
         "data.reasons", "an e-mail address"),
        (with_data("request.rejected", authority="call 09 1234 5678"),
         "data.authority", "a phone number"),
        (with_data("request.fulfilled", delivered=["export.json", "sent to 2001:db8::7"]),
         "data.delivered.1", "an IP address"),
        (with_data("recipient.notified", recipient_id="x@localhost"),
         "data.recipient_id", "an e-mail address"),
        (with_data("subject.accessed", reason="phoned 0401234567"),
         "data.reason", "a phone number"),
        (with_data("consent.given", form_url="https://sen.fi/tilaa?email=jane%40example.com"),
         "data.form_url", "an e-mail address"),
        (with_data("consent.requested", form_url="http://192.0.2.7/tilaa"),
         "data.form_url", "an IP address"),
    ],
)  # fmt: skip
def test_a_clear_field_refuses_personal_data_and_names_itself(
    body: dict[str, Any], field: str, kind: str
) -> None:
    [error] = refusal(body)
    assert error["field"] == field
    assert (
        f"must not contain personal data (looks like {kind}); put it in personal"
        in (error["reason"])
    )


@pytest.mark.parametrize("subject_id", ["x@localhost", "maija@example.fi", "crm-1@", "@crm"])
def test_a_subject_id_refuses_an_at_sign(subject_id: str) -> None:
    [error] = refusal(valid_json("consent.withdrawn", subject_id))
    assert error["field"] == "subject_id"
    assert "must not contain '@'" in error["reason"]


def test_the_same_values_in_personal_are_accepted() -> None:
    personal = {"email": "jane@example.com", "ip_address": "10.0.0.7", "note": "040 1234567"}
    SUBMISSION_ADAPTER.validate_python(valid_json("consent.given", personal=personal))


def test_what_the_ledger_writes_itself_passes() -> None:
    register = load_register()
    authority = register.supervisory_authority
    rejected = with_data("request.rejected", authority=f"{authority.name}, {authority.url}")
    for source in (LEDGER_SOURCE, RETENTION_SOURCE):
        body = {**rejected, "source": source.model_dump()}
        SUBMISSION_ADAPTER.validate_python(body)


def test_an_old_event_with_personal_data_in_clear_still_decodes_from_the_log() -> None:
    """Recorded before the rule: a replay years later must read what intake accepted then."""
    raw = {
        **valid_json("consent.given", "x@localhost", source={"system": "s", "actor": "a@b.fi"}),
        "event_id": REQUEST_ID,
        "schema_version": Envelope.SCHEMA_VERSION,
        "recorded_at": "2024-03-04T10:00:00Z",
    }
    event = decode(orjson.dumps(raw))
    assert (event.subject_id, event.source.actor) == ("x@localhost", "a@b.fi")


def test_the_register_may_hold_organisations_own_contact_details() -> None:
    """Register entries are no event's fields: a recipient's contact address is not personal
    data of a subject, and the register must load with one."""
    shipped = files("events").joinpath("registers", "seiverkot-newsletter.toml").read_text()
    text = shipped.replace(
        'id = "newsletter_tool"\n',
        'id = "newsletter_tool"\ncontact = "privacy@newsletter-tool.example, +358 9 123 4567"\n',
    )
    assert text != shipped
    [recipient, *_] = parse_register(text).recipients
    assert recipient.contact == "privacy@newsletter-tool.example, +358 9 123 4567"
