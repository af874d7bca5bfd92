"""What an append takes and gives back, apart from Kafka: the service layer and the in-memory
appender use these without importing aiokafka."""

from __future__ import annotations

from dataclasses import dataclass, field

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record to append."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where the broker put a record."""

    topic: str
    partition: int
    offset: int


class AppendError(RuntimeError):
    """Kafka did not take the records; none of them was appended."""
