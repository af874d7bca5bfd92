"""The forget bound as the feed topic's configs and the publisher's tombstone re-send delay."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.config import Settings
from services.messaging.forgetting import feed_topic_configs, roll_after_ms


def test_the_default_bound_is_an_hour_and_the_environment_sets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().feed_forget_after_s == 3600
    monkeypatch.setenv("CONSENT_LEDGER_FEED_FORGET_AFTER_S", "600")
    assert Settings().feed_forget_after_s == 600
    monkeypatch.setenv("CONSENT_LEDGER_FEED_FORGET_AFTER_S", "1")
    with pytest.raises(ValidationError):
        Settings()


def test_an_hour_rolls_and_compacts_after_half_an_hour() -> None:
    assert feed_topic_configs(3600) == {
        "cleanup.policy": "compact",
        "segment.ms": "1800000",
        "max.compaction.lag.ms": "1800000",
        "file.delete.delay.ms": "60000",
        "delete.retention.ms": str(7 * 24 * 3600 * 1000),
    }
    assert roll_after_ms(3600) == 1_800_000


@pytest.mark.parametrize("bound_s", [2, 16, 59, 600, 3600, 86_400])
def test_roll_cleaning_and_file_deletion_fit_in_the_bound(bound_s: int) -> None:
    """The tombstone is re-sent when the segment may roll, the log is then due for cleaning at
    once, and the replaced files go within a tenth of the bound (at most Kafka's minute)."""
    configs = feed_topic_configs(bound_s)
    roll = roll_after_ms(bound_s)
    assert int(configs["segment.ms"]) == int(configs["max.compaction.lag.ms"]) == roll
    delete_delay = int(configs["file.delete.delay.ms"])
    assert delete_delay <= min(60_000, bound_s * 100)
    assert roll + delete_delay <= bound_s * 1000 * 6 // 10, "the rest is the cleaner's margin"
