"""The bench's broker warm-up against a real broker: every record goes there and back."""

from __future__ import annotations

from collections import Counter

import pytest

from services.audit.log import read_log
from services.config import Settings
from tools.bench import raw, workload
from tools.bench.warmup import warm_broker

pytestmark = pytest.mark.integration


async def test_the_warm_up_sends_every_record_and_reads_it_back(settings: Settings) -> None:
    records = raw.encoded(next(workload.event_chunks(0, 6_000, 1_000, 6_000)))
    done = await warm_broker(settings, settings.ledger_topic, records)
    assert done.records == 6_000
    assert done.seconds > 0
    on_topic = await read_log(settings.kafka_options(), settings.ledger_topic)
    assert Counter(r.value for r in on_topic) == Counter(r.value for r in records)
    assert {r.key for r in on_topic} == {r.key for r in records}


async def test_a_topic_that_held_records_already_is_refused(settings: Settings) -> None:
    records = raw.encoded(next(workload.event_chunks(0, 100, 10, 100)))
    await warm_broker(settings, settings.ledger_topic, records)
    with pytest.raises(RuntimeError, match="100 records produced, 200 read back"):
        await warm_broker(settings, settings.ledger_topic, records)
