"""Read models: eligibility as of the reader's "now"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events.consent import ConsentGiven
from events.envelope import Envelope
from projections.rows import state_to_json
from projections.state import fold
from tests.samples import T0, valid_json


def test_a_consent_past_its_validity_is_not_eligible_before_the_expiry_is_recorded() -> None:
    body = valid_json("consent.given")
    body["data"] = {**body["data"], "valid_until": (T0 + timedelta(days=30)).isoformat()}
    event = ConsentGiven.model_validate(
        {**body, "event_id": "01a2145e-bae9-706e-a524-6315bf1696f6",
         "schema_version": Envelope.SCHEMA_VERSION,
         "recorded_at": T0.isoformat(), "occurred_at": T0.isoformat()}
    )  # fmt: skip
    state = fold([event])["crm-1"]
    before = state_to_json(state, T0 + timedelta(days=29))
    assert before["purposes"]["newsletter"]["eligible"] is True
    after = state_to_json(state, datetime(2024, 4, 10, tzinfo=UTC))
    assert after["purposes"]["newsletter"]["eligible"] is False
    assert "lapsed on 2024-04-03" in after["purposes"]["newsletter"]["eligibility_reason"]
