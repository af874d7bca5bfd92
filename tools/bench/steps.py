"""``python -m tools bench-steps``: the CPU each pure step of the projector costs per event.

No stack is needed. The bench's own events, sealed as intake seals them and encoded as the
log holds them, are cut into the projector's batches and taken through its steps once, to
have every step's real input; then each step alone runs over all batches, ``rounds`` times,
and its least CPU time (``time.process_time``) is kept. The steps are the functions the
projector and the replay call, not copies; what they leave out is the I/O: asyncpg's
encoding and protocol, aiokafka's fetch, the event loop (docs/performance.md).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord

from events.chain import GENESIS, link
from events.codec import encode
from events.sealing import DataKey
from projections.db import decode_jsonb, encode_jsonb
from projections.outbox import feed_changes
from projections.records import LedgerRecord
from projections.rows import (
    PurposesDoc,
    purposes_doc,
    request_columns,
    requests_to_json,
    state_from_row,
    subscriber_columns,
)
from projections.state import SubjectState, fold
from projections.store import mirror_columns
from services.intake.recording import seal_all
from services.process import settle_heap
from services.projection.batches import Record, decode_record, opened
from tools.bench import workload
from tools.bench.report import format_grid

PARTITIONS = 12
#: The ``subscribers`` columns in :func:`subscriber_columns`' order, and those that are jsonb.
_COLUMNS = (
    "subject_id",
    "email",
    "purposes",
    "restricted_since",
    "erased_at",
    "erasure",
    "version",
    "last_event_id",
    "updated_at",
    "marks",
)
_JSONB = frozenset({"purposes", "erasure", "marks"})


@dataclass(frozen=True, slots=True)
class Batch:
    """One consumed batch and what each of the projector's steps made of it."""

    fetched: list[Record]
    keys: Mapping[tuple[str, int], DataKey]
    decoded: list[LedgerRecord]
    opened: list[LedgerRecord]
    rows: list[dict[str, Any]]  # the touched subjects' rows as the batch loads them
    before: dict[str, SubjectState]
    after: dict[str, SubjectState]
    purposes: dict[str, PurposesDoc]


def stored_rows(
    states: Sequence[SubjectState], purposes: Mapping[str, PurposesDoc]
) -> list[dict[str, Any]]:
    """The rows a later batch loads for ``states``: the upsert's columns and the subject's
    requests as ``LOAD_SUBJECTS`` joins them, the jsonb ones through the pool's codec both
    ways."""
    return [
        {
            name: decode_jsonb(encode_jsonb(value)) if name in _JSONB and value else value
            for name, value in zip(_COLUMNS, row, strict=True)
        }
        | {"requests": decode_jsonb(encode_jsonb(requests_to_json(state)))}
        for state, row in zip(
            states, zip(*subscriber_columns(states, purposes), strict=True), strict=True
        )
    ]


def fetched_records(events: int, subjects: int) -> tuple[list[Record], dict[Any, DataKey]]:
    """The run's events as the projector fetches them, keyed and partitioned by subject, with
    the data keys that open them."""
    keys = {
        workload.subject_id(n): DataKey.generate(workload.subject_id(n), 1)
        for n in range(min(events, subjects))
    }
    sealed = seal_all([workload.event(i, subjects) for i in range(events)], keys)
    offsets = [0] * PARTITIONS
    out: list[Record] = []
    for event in sealed:
        key = event.subject_id.encode()
        partition = zlib.crc32(key) % PARTITIONS
        value = encode(event)
        out.append(
            ConsumerRecord(
                topic="ledger",
                partition=partition,
                offset=offsets[partition],
                timestamp=0,
                timestamp_type=0,
                key=key,
                value=value,
                checksum=None,
                serialized_key_size=len(key),
                serialized_value_size=len(value),
                headers=(),
            )
        )
        offsets[partition] += 1
    return out, {(k.subject_id, k.generation): k for k in keys.values()}


def prepare(events: int, subjects: int, batch_size: int) -> list[Batch]:
    """Every batch of the run with its steps' inputs, states carried from batch to batch."""
    fetched, keys = fetched_records(events, subjects)
    stored: dict[str, dict[str, Any]] = {}
    batches = []
    for first in range(0, len(fetched), batch_size):
        part = fetched[first : first + batch_size]
        decoded = [decode_record(r) for r in part]
        ready = [opened(r, keys) for r in decoded]
        rows = [stored[s] for s in dict.fromkeys(r.event.subject_id for r in ready) if s in stored]
        before = {row["subject_id"]: state_from_row(row) for row in rows}
        after = fold([r.event for r in ready], before)
        purposes = {subject: purposes_doc(state) for subject, state in after.items()}
        batches.append(Batch(part, keys, decoded, ready, rows, before, after, purposes))
        stored.update(
            (row["subject_id"], row) for row in stored_rows(list(after.values()), purposes)
        )
    return batches


def _chain(batch: Batch) -> bytes:
    head = GENESIS
    for record in batch.opened:
        head = link(head, record.value)
    return head


#: The projector's steps in the order a batch takes them; the replay takes all but the last.
STEPS: tuple[tuple[str, Callable[[Batch], object]], ...] = (
    ("decode", lambda b: [decode_record(r) for r in b.fetched]),
    ("open", lambda b: [opened(r, b.keys) for r in b.decoded]),
    ("hash chain", _chain),
    ("mirror columns", lambda b: mirror_columns(b.opened)),
    ("load states", lambda b: [state_from_row(row) for row in b.rows]),
    ("fold", lambda b: fold([r.event for r in b.opened], b.before)),
    ("purposes column", lambda b: {s: purposes_doc(state) for s, state in b.after.items()}),
    ("subscriber columns", lambda b: subscriber_columns(list(b.after.values()), b.purposes)),
    ("request columns", lambda b: request_columns(list(b.after.values()))),
    ("feed outbox", lambda b: feed_changes(b.before, b.after, b.purposes)),
)


def least_cpu(step: Callable[[Batch], object], batches: Sequence[Batch], rounds: int) -> float:
    """The least CPU seconds one pass of ``step`` over all batches took in ``rounds``."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for batch in batches:
            step(batch)
        best = min(best, time.process_time() - started)
    return best


def measure(batches: Sequence[Batch], rounds: int) -> Iterator[tuple[str, float]]:
    """Each step's CPU microseconds per event."""
    events = sum(len(b.fetched) for b in batches)
    for name, step in STEPS:
        yield name, least_cpu(step, batches, rounds) / events * 1e6


def format_steps(costs: Sequence[tuple[str, float]], events: int, subjects: int) -> str:
    total = sum(cost for _, cost in costs)
    body = [(name, f"{cost:.1f}", f"{cost / total:.0%}") for name, cost in costs]
    body.append(("all of them", f"{total:.1f}", "100%"))
    head = (
        f"CPU microseconds per event of each pure step of the projector, {events:,} events "
        f"for {subjects:,} subjects (least of the rounds); the replay skips the feed outbox:\n\n"
    )
    return head + format_grid(("step", "µs per event", "share"), body)


def main(events: int, subjects: int, batch_size: int, rounds: int) -> int:
    settle_heap()  # as the projector runs: the collector off the loaded code
    batches = prepare(events, subjects, batch_size)
    settle_heap()  # the prepared batches are long-lived here; in the projector they are not
    print(format_steps(list(measure(batches, rounds)), events, subjects))
    return 0
