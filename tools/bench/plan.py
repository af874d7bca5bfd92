"""Which measurements a run makes: all of them, or those ``--only`` names.

Kept free of imports so that the command line can check the names before anything starts.
"""

from __future__ import annotations

from collections.abc import Collection

#: Every measurement, in the order a run makes them.
#: The peer runs beside the raw limits: PostgreSQL alone, before any service starts.
MEASUREMENTS = (
    "raw", "peer", "projection", "replay", "http-batches", "capacity", "open-loop", "lag",
    "feed", "kafka-intake",
)  # fmt: skip
#: These need intake, the projector and the feed publisher running.
WITH_SERVICES = frozenset(MEASUREMENTS[MEASUREMENTS.index("http-batches") :])


def select(names: Collection[str]) -> tuple[str, ...]:
    """The measurements to make, in run order; none named means all of them.

    The replay rebuilds the ledger that the projection run appended, so it brings that along.
    """
    unknown = sorted(set(names) - set(MEASUREMENTS))
    if unknown:
        raise ValueError(
            f"no measurement named {', '.join(unknown)}; there are {', '.join(MEASUREMENTS)}"
        )
    wanted = set(names or MEASUREMENTS) | ({"projection"} if "replay" in names else set())
    return tuple(name for name in MEASUREMENTS if name in wanted)
