"""``consent-ledger verify``: recompute the hash chain from the Kafka log and from the mirror,
and report every position where they, or a signed checkpoint, disagree.

Per partition, the log's chain is recomputed from the record bytes. The mirror's chain
(``ledger_chain``) is checked link by link: each row's ``prev_hash`` is the hash before it, and
re-encoding the event's ``ledger_events.payload`` hashes to the row's ``hash``. Then the two
are compared position by position. Each check starts from the stored hash before it, so one
altered row gives one finding, not one for every later position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from events.chain import GENESIS, canonical, link
from events.codec import DecodeError, decode_raw
from projections.chain import Head, read_heads
from projections.db import Conn, create_pool
from projections.store import PROJECTION
from services.audit.log import Record, iterate_log
from services.audit.models import (
    CheckpointFile,
    Finding,
    FindingKind,
    PartitionSummary,
    VerifyReport,
)
from services.audit.signing import SignatureError
from services.audit.signing import verify as verify_signature
from services.config import Settings


async def verify_ledger(
    settings: Settings,
    checkpoints: CheckpointFile | None = None,
    key: Ed25519PublicKey | None = None,
) -> VerifyReport:
    """Verify the ledger topic against its mirror (and the checkpoints, signed by ``key``).

    The mirror is read first, in one snapshot, and the log after it: the log can only be
    ahead, and positions the projector has not reached yet are counted as pending."""
    findings: list[Finding] = []
    partitions: dict[int, Partition] = {}
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        async with (
            pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            await read_mirror(conn, settings.ledger_topic, partitions, findings)
    finally:
        await pool.close()
    log = LogChain(findings)
    async for record in iterate_log(settings.kafka_options(), settings.ledger_topic):
        log.add(record)
    return build_report(
        settings.ledger_topic, log.positions, partitions, findings, checkpoints, key
    )


@dataclass(frozen=True, slots=True)
class LogPosition:
    """An event on the log and the chain's hash at it."""

    event_id: UUID
    hash: bytes


@dataclass(frozen=True, slots=True)
class ChainRow:
    """A position of the mirror's chain and the mirror row of its event, if any."""

    offset: int
    event_id: UUID
    prev_hash: bytes
    hash: bytes
    payload: dict[str, Any] | None


@dataclass
class Partition:
    """Everything verification knows of one partition."""

    number: int
    log: dict[int, LogPosition] = field(default_factory=dict)
    chain: list[ChainRow] = field(default_factory=list)
    head: Head | None = None
    projected_to: int = 0  # the projector's next offset: positions below it must be chained


#: Records a finding at the chain row being checked.
Found = Callable[[FindingKind, str], None]


class LogChain:
    """The chain recomputed from the log's bytes, fed one record at a time (offset order
    within each partition), keeping per position only its event id and two hashes. A record
    that is no event (the projector dead-lettered it) is outside the chain, and a finding."""

    def __init__(self, findings: list[Finding]) -> None:
        self.positions: dict[int, dict[int, LogPosition]] = {}
        self._findings = findings
        self._heads: dict[int, bytes] = {}

    def add(self, record: Record) -> None:
        value = record.value or b""
        try:
            payload = orjson.loads(value)
            event = decode_raw(payload)
        except (orjson.JSONDecodeError, DecodeError, ValidationError, TypeError) as exc:
            detail = f"not an event: {exc}"
            self._findings.append(
                _finding("undecodable", record.partition, record.offset, None, detail)
            )
            return
        digest = link(self._heads.get(record.partition, GENESIS), value)
        self._heads[record.partition] = digest
        self.positions.setdefault(record.partition, {})[record.offset] = LogPosition(
            event.event_id, digest
        )


def log_chain(
    records: Iterable[Record], findings: list[Finding]
) -> dict[int, dict[int, LogPosition]]:
    """The log's chain of ``records``, per partition and offset."""
    chain = LogChain(findings)
    for record in records:
        chain.add(record)
    return chain.positions


_CHAIN_ROWS = """
SELECT c.partition, c."offset", c.event_id, c.prev_hash, c.hash, e.payload
FROM ledger_chain c LEFT JOIN ledger_events e ON e.event_id = c.event_id
WHERE c.topic = $1 ORDER BY c.partition, c."offset"
"""
_UNCHAINED_ROWS = """
SELECT e.event_id, e.partition, e."offset" FROM ledger_events e
WHERE e.topic = $1 AND NOT EXISTS (
    SELECT 1 FROM ledger_chain c WHERE c.topic = e.topic AND c.partition = e.partition
      AND c."offset" = e."offset" AND c.event_id = e.event_id)
ORDER BY e.partition, e."offset"
"""
_PROJECTED = """
SELECT partition, next_offset FROM projector_offsets WHERE projection = $1 AND topic = $2
"""
#: The mirror's columns are copies of payload fields (reads filter on them): all must agree.
_COLUMNS_OFF = """
SELECT event_id, partition, "offset", array_remove(ARRAY[
    CASE WHEN subject_id IS DISTINCT FROM payload->>'subject_id' THEN 'subject_id' END,
    CASE WHEN type IS DISTINCT FROM payload->>'type' THEN 'type' END,
    CASE WHEN purpose IS DISTINCT FROM payload->>'purpose' THEN 'purpose' END,
    CASE WHEN schema_version IS DISTINCT FROM (payload->>'schema_version')::int
         THEN 'schema_version' END,
    CASE WHEN occurred_at IS DISTINCT FROM (payload->>'occurred_at')::timestamptz
         THEN 'occurred_at' END,
    CASE WHEN recorded_at IS DISTINCT FROM (payload->>'recorded_at')::timestamptz
         THEN 'recorded_at' END], NULL) AS columns
FROM ledger_events WHERE topic = $1
"""


async def read_mirror(
    conn: Conn, topic: str, partitions: dict[int, Partition], findings: list[Finding]
) -> None:
    """Load the mirror's chain, heads and erasures into ``partitions``; a mirror row that no
    chain position accounts for is a finding (``inserted``). Run it in one snapshot."""

    def part(number: int) -> Partition:
        return partitions.setdefault(number, Partition(number))

    for row in await conn.fetch(_CHAIN_ROWS, topic):
        part(row["partition"]).chain.append(
            ChainRow(row["offset"], row["event_id"], row["prev_hash"], row["hash"], row["payload"])
        )
    for head in await read_heads(conn, topic):
        part(head.partition).head = head
    for row in await conn.fetch(_PROJECTED, PROJECTION, topic):
        part(row["partition"]).projected_to = row["next_offset"]
    for row in await conn.fetch(_COLUMNS_OFF, topic):
        if row["columns"]:
            findings.append(
                _finding(
                    "changed",
                    row["partition"],
                    row["offset"],
                    row["event_id"],
                    f"the mirror's {', '.join(row['columns'])} disagree(s) with its payload",
                )
            )
    for row in await conn.fetch(_UNCHAINED_ROWS, topic):
        findings.append(
            _finding(
                "inserted",
                row["partition"],
                row["offset"],
                row["event_id"],
                "the mirror has this event, but the chain has no such event at that position",
            )
        )


def check_partition(p: Partition, findings: list[Finding]) -> PartitionSummary:
    """Check one partition's mirror chain link by link and against the log's chain."""
    previous = GENESIS
    first_copy: dict[UUID, int] = {}
    duplicates = 0
    for row in p.chain:

        def found(kind: FindingKind, detail: str, row: ChainRow = row) -> None:
            findings.append(_finding(kind, p.number, row.offset, row.event_id, detail))

        if row.prev_hash != previous:
            found("broken_link", "prev_hash is not the hash of the chain's position before it")
        previous = row.hash
        if row.event_id in first_copy:
            duplicates += 1
        first_copy.setdefault(row.event_id, row.offset)
        if row.payload is None:
            found("missing", "the chain has this event here, but the mirror has no row for it")
        elif link(row.prev_hash, canonical(row.payload)) != row.hash:
            if first_copy[row.event_id] != row.offset:
                found(
                    "changed",
                    f"the log holds this event again (first at offset "
                    f"{first_copy[row.event_id]}) with different bytes",
                )
            else:
                found("changed", "the mirror's payload does not hash to the chain here")
        _compare_with_log(p, row, found)
    chained = {row.offset for row in p.chain}
    next_offset = max(p.head.next_offset if p.head else 0, p.projected_to)
    pending = 0
    for offset, position in sorted(p.log.items()):
        if offset in chained:
            continue
        if offset >= next_offset:
            pending += 1
        else:
            findings.append(
                _finding(
                    "missing",
                    p.number,
                    offset,
                    position.event_id,
                    "the log has this event here; the mirror's chain does not",
                )
            )
    if p.head is not None and (p.head.hash != previous or p.head.length != len(p.chain)):
        findings.append(
            _finding(
                "broken_link",
                p.number,
                p.head.next_offset - 1,
                None,
                f"the chain head ({p.head.length} positions, {p.head.hash.hex()[:16]}…) is not "
                f"the chain's last position ({len(p.chain)} positions, {previous.hex()[:16]}…)",
            )
        )
    return PartitionSummary(
        partition=p.number,
        log_positions=len(p.log),
        chained=len(p.chain),
        pending=pending,
        duplicates=duplicates,
        head=p.chain[-1].hash.hex() if p.chain else None,
    )


def _compare_with_log(p: Partition, row: ChainRow, found: Found) -> None:
    position = p.log.get(row.offset)
    if position is None:
        found("inserted", "the chain has a position that the log does not have")
    elif position.event_id != row.event_id:
        found("changed", f"the log has event {position.event_id} at this position")
    elif position.hash != row.hash:
        found("changed", "the chain's hash here differs from the one recomputed from the log")


def check_checkpoints(
    file: CheckpointFile, key: Ed25519PublicKey, topic: str, partitions: dict[int, Partition]
) -> list[Finding]:
    """Each checkpoint must be signed by ``key`` and match both chains at its position."""
    findings = []
    for checkpoint in file.checkpoints:
        where = (checkpoint.partition, checkpoint.offset)
        try:
            verify_signature(key, checkpoint.model_dump(mode="json"), checkpoint.signature)
        except SignatureError as exc:
            findings.append(_finding("signature", *where, None, f"checkpoint {exc}"))
            continue
        if checkpoint.topic != topic:
            findings.append(
                _finding("checkpoint", *where, None, f"checkpoint of topic {checkpoint.topic!r}")
            )
            continue
        p = partitions.get(checkpoint.partition, Partition(checkpoint.partition))
        position = p.log.get(checkpoint.offset)
        row = next((r for r in p.chain if r.offset == checkpoint.offset), None)
        for name, digest in (
            ("the log", position.hash if position else None),
            ("the mirror", row.hash if row else None),
        ):
            if digest is None:
                detail = f"{name} has no event at the checkpoint's position"
            elif digest.hex() != checkpoint.hash:
                detail = f"{name}'s chain hash differs from the checkpoint's: rewritten before it"
            else:
                continue
            findings.append(_finding("checkpoint", *where, None, detail))
    return findings


def build_report(
    topic: str,
    log: dict[int, dict[int, LogPosition]],
    partitions: dict[int, Partition],
    findings: list[Finding],
    checkpoints: CheckpointFile | None,
    key: Ed25519PublicKey | None,
) -> VerifyReport:
    for number, chain in log.items():
        partitions.setdefault(number, Partition(number)).log = chain
    summaries = [check_partition(p, findings) for _, p in sorted(partitions.items())]
    if checkpoints is not None and key is not None:
        findings.extend(check_checkpoints(checkpoints, key, topic, partitions))
    findings.sort(key=lambda f: (f.partition or 0, f.offset or 0, f.kind))
    return VerifyReport(
        topic=topic,
        ok=not findings,
        findings=findings,
        partitions=summaries,
        checkpoints_checked=len(checkpoints.checkpoints) if checkpoints else 0,
    )


def _finding(
    kind: FindingKind, partition: int | None, offset: int | None, event_id: UUID | None, detail: str
) -> Finding:
    return Finding(kind=kind, partition=partition, offset=offset, event_id=event_id, detail=detail)


def render(report: VerifyReport) -> str:
    """The report for a person: a line per partition, then every finding."""
    lines = [f"topic {report.topic}"]
    for s in report.partitions:
        head = s.head[:16] + "…" if s.head else "-"
        lines.append(
            f"  partition {s.partition}: {s.log_positions} on the log, {s.chained} chained, "
            f"{s.pending} pending, {s.duplicates} duplicate; head {head}"
        )
    if report.checkpoints_checked:
        lines.append(f"  checkpoints checked: {report.checkpoints_checked}")
    for f in report.findings:
        where = f"partition {f.partition} offset {f.offset}" if f.partition is not None else "-"
        event = f" event {f.event_id}" if f.event_id else ""
        lines.append(f"{f.kind.upper():<12} {where}{event}: {f.detail}")
    lines.append("OK" if report.ok else f"FAILED: {len(report.findings)} finding(s)")
    return "\n".join(lines)
