"""Dead letters: records that can never be processed, kept with where they came from and why."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from services.messaging.records import OutRecord

#: Headers added to every dead letter (the record's own headers are kept before them).
ORIGIN_TOPIC = "x-origin-topic"
ORIGIN_PARTITION = "x-origin-partition"
ORIGIN_OFFSET = "x-origin-offset"
ERROR_REASON = "x-error-reason"
ERROR_DETAIL = "x-error-detail"


def dead_letter(
    record: ConsumerRecord[bytes, bytes], topic: str, reason: str, detail: str
) -> OutRecord:
    """The dead-letter copy of a record: its bytes as they were, with where and why."""
    headers = [
        *(record.headers or ()),
        (ORIGIN_TOPIC, record.topic.encode()),
        (ORIGIN_PARTITION, str(record.partition).encode()),
        (ORIGIN_OFFSET, str(record.offset).encode()),
        (ERROR_REASON, reason.encode()),
        (ERROR_DETAIL, detail.encode()[:8000]),
    ]
    return OutRecord(topic=topic, key=record.key, value=record.value or b"", headers=headers)
