"""How many records intake's Kafka transactions held in each measurement.

Read from intake's own histogram on ``/metrics`` before and after a measurement. A transaction
has a fixed cost to the broker whatever it carries (the coordinator's round trips and the
commit markers), so this says how well group commit shares that cost. Like PostgreSQL's log,
it is a count, which the machine's speed does not move.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

#: intake's histogram of records per Kafka transaction (services/metrics.py).
METRIC = "consent_ledger_append_batch_records"


@dataclass(frozen=True, slots=True)
class Totals:
    """The histogram's running totals: records appended and transactions committed."""

    records: float
    transactions: float


@dataclass(frozen=True, slots=True)
class Grouping:
    """The transactions intake committed while a measurement ran."""

    transactions: int
    records: int

    @property
    def per_transaction(self) -> float:
        return self.records / self.transactions


def totals(exposition: str) -> Totals:
    """The totals in a Prometheus text exposition; ``ValueError`` when it lacks them."""
    for family in text_string_to_metric_families(exposition):
        samples = {sample.name: sample.value for sample in family.samples}
        if family.name == METRIC and {f"{METRIC}_sum", f"{METRIC}_count"} <= samples.keys():
            return Totals(samples[f"{METRIC}_sum"], samples[f"{METRIC}_count"])
    raise ValueError(f"no {METRIC}_sum and _count in the metrics")


def grouping(before: Totals, after: Totals) -> Grouping | None:
    """What was committed between two readings; None when nothing was."""
    transactions = round(after.transactions - before.transactions)
    if transactions <= 0:
        return None
    return Grouping(transactions, round(after.records - before.records))


async def read(service_url: str) -> Totals | None:
    """A service's totals, or None when it does not answer (a reading is not worth failing
    a measurement for)."""

    def fetch() -> str:
        with urllib.request.urlopen(f"{service_url}/metrics", timeout=5) as answer:
            return str(answer.read().decode())

    try:
        return totals(await asyncio.to_thread(fetch))
    except (OSError, ValueError):
        return None


HEADER = ("measurement", "transactions", "records", "records per transaction")
LEGEND = (
    "intake's Kafka transactions while each measurement ran, from its /metrics: a transaction "
    "is shared by the requests that wait for it (group commit)"
)


def cells(groups: Mapping[str, Grouping]) -> list[tuple[str, ...]]:
    """One line per measurement for :func:`tools.bench.report.format_grid`."""
    return [
        (name, f"{g.transactions:,}", f"{g.records:,}", f"{g.per_transaction:,.1f}")
        for name, g in groups.items()
    ]


def to_json(groups: Mapping[str, Grouping]) -> dict[str, dict[str, float]]:
    return {
        name: {
            "transactions": g.transactions,
            "records": g.records,
            "records_per_transaction": round(g.per_transaction, 2),
        }
        for name, g in groups.items()
    }
