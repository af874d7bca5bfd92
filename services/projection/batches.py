"""The pure steps of a ledger batch: decode each record, open what the fold reads of its
personal section, and cut the batch by partition for the writers.

The live projector and the replay take their records through these same steps, so a rebuild
folds exactly what the live projection folded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeAlias

import orjson
from aiokafka import ConsumerRecord

from events.catalog import AnyEvent
from events.codec import DecodeError, decode_raw
from events.sealing import DataKey, TamperedError, open_event
from projections.records import LedgerRecord
from projections.state import FOLDED_PERSONAL
from services.privacy.keystore import KeyRef, KeyStore

Record: TypeAlias = ConsumerRecord[bytes, bytes]
#: Which writer a partition goes to; it must not change while the runner runs, or two writers
#: could write one partition's batches out of order.
Slot: TypeAlias = Callable[[int], int]


def decode_record(record: Record) -> LedgerRecord:
    """A ledger record as the store wants it; raises ``ValueError`` when it is poison."""
    try:
        payload = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise DecodeError("an event must be a JSON object")
    event = decode_raw(payload)  # validates schema_version too
    version = int(payload["schema_version"])
    return LedgerRecord(record.partition, record.offset, event, version, record.value or b"")


def sealed_ref(event: AnyEvent) -> KeyRef | None:
    """Which data key opens the event's personal section, if it has one."""
    return (event.subject_id, event.sealed.key_generation) if event.sealed else None


def opened(record: LedgerRecord, keys: Mapping[KeyRef, DataKey]) -> LedgerRecord:
    """The record with what the fold reads of its personal section opened (the rest stays
    sealed); a destroyed key leaves it empty (erased).
    Raises :class:`TamperedError` when the ciphertext or what it is bound to was changed."""
    ref = sealed_ref(record.event)
    if ref is None or ref not in keys:
        return record
    return replace(record, event=open_event(record.event, keys[ref], FOLDED_PERSONAL))


async def open_all(
    records: Sequence[LedgerRecord], keys: KeyStore
) -> list[LedgerRecord | TamperedError]:
    """Each record opened (one key lookup for all), or why it was refused."""
    refs = {ref for r in records if (ref := sealed_ref(r.event)) is not None}
    found = await keys.find_exact(refs)
    out: list[LedgerRecord | TamperedError] = []
    for record in records:
        try:
            out.append(opened(record, found))
        except TamperedError as exc:
            out.append(exc)
    return out


@dataclass(slots=True)
class Batch:
    """Records read from the ledger topic, and the offset each partition reaches with them
    (which may lie past the last record: transaction markers take offsets too)."""

    records: list[Record] = field(default_factory=list)
    ends: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, records: Sequence[Record]) -> Batch:
        """A batch that reaches just past each partition's last record."""
        ends: dict[int, int] = {}
        for record in records:
            ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
        return cls(list(records), ends)


@dataclass(frozen=True, slots=True)
class Part:
    """One writer's share of a prepared batch: its partitions' records as read, those decoded
    and opened, and the offsets they reach; written in one transaction."""

    records: Sequence[Record]
    good: Sequence[LedgerRecord]
    ends: Mapping[int, int]
    started: float


def split(
    batch: Batch, good: Sequence[LedgerRecord], slot: Slot, ways: int, started: float
) -> list[Part]:
    """The batch cut by partition into ``ways`` parts, each in log order."""
    return [
        Part(
            [r for r in batch.records if slot(r.partition) == way],
            [r for r in good if slot(r.partition) == way],
            {p: end for p, end in batch.ends.items() if slot(p) == way},
            started,
        )
        for way in range(ways)
    ]
