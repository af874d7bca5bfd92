"""Reads of personal data are events too: who read whose data, when, and why (Art. 5(2)).

The record is appended (and acknowledged by the broker) before the data is served: a read that
cannot be recorded is not served.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from events.catalog import SUBMISSION_ADAPTER
from services.access.tokens import Caller
from services.errors import ProblemError
from services.messaging.appender import Appender
from services.messaging.recording import record_event, to_records
from services.messaging.records import AppendError


class AccessRecorder:
    def __init__(self, appender: Appender, ledger_topic: str) -> None:
        self._appender = appender
        self._topic = ledger_topic

    async def record(
        self, caller: Caller, subject_id: str, scope: Literal["subject", "history"], reason: str
    ) -> None:
        submission = SUBMISSION_ADAPTER.validate_python(
            {
                "type": "subject.accessed",
                "subject_id": subject_id,
                "occurred_at": datetime.now(UTC),
                "source": {"system": "read-api", "actor": caller.name},
                "data": {
                    "reader": caller.name,
                    "role": caller.role,
                    "scope": scope,
                    "reason": reason,
                },
            }
        )
        try:
            await self._appender.append(to_records([record_event(submission)], self._topic))
        except AppendError as exc:
            message = f"the read could not be recorded in the ledger ({exc}), so it is not served"
            raise ProblemError(503, "ledger_unavailable", message) from exc
