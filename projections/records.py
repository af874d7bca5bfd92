"""The unit the projection folds: a decoded ledger record.

It has a module of its own, below the store and the chain, so that both can name it without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.catalog import AnyEvent


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """A decoded event, its bytes as on the log, and where it sits in the ledger topic.

    Of the parsed JSON only the schema version as appended (before upcasting) is kept: a batch
    holds thousands of records, and the dict took about 2.6 times the memory of its bytes."""

    partition: int
    offset: int
    event: AnyEvent
    schema_version: int
    value: bytes
