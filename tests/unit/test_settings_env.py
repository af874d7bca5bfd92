"""Settings travel to child processes (``python -m tools run``) as environment variables."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.config import Settings, Webhook
from tools.stack.settings import StackSettings

HOOK = Webhook(url="https://mail.example.com/hook", secret="0123456789abcdef")


def test_every_setting_survives_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lists (the webhooks, secrets included) go as JSON, so the child reads what was meant;
    the stack's own settings travel the same way."""
    original = StackSettings(feed_webhooks=[HOOK], feed_topic="feed-x", stack_postgres=True)
    for name, value in original.to_env().items():
        monkeypatch.setenv(name, value)
    assert StackSettings() == original
    assert Settings().feed_webhooks[0].secret == "0123456789abcdef"


def test_a_short_webhook_secret_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(feed_webhooks=[{"url": "https://x.example/h", "secret": "short"}])
    assert refused.value.errors()[0]["loc"] == ("feed_webhooks", 0, "secret")


def test_a_replay_runs_in_one_process_per_usable_cpu_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2})
    assert Settings().replay_processes == 3
    monkeypatch.setenv("CONSENT_LEDGER_REPLAY_PROCESSES", "1")
    assert Settings().replay_processes == 1
    monkeypatch.setenv("CONSENT_LEDGER_REPLAY_PROCESSES", "0")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert refused.value.errors()[0]["loc"] == ("replay_processes",)
