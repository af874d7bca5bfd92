"""How the feed topic forgets an erased person's address within ``feed_forget_after_s`` (pure).

Compaction removes a key's older records only once a newer record of that key sits in a closed
segment: the log cleaner never cleans the active segment, and a segment rolls on time only when a
record is appended after it grew old enough. So the topic rolls segments, and makes a dirty
log due for cleaning, after half the bound (``segment.ms``, ``max.compaction.lag.ms``), and the
publisher sends each erasure's tombstone a second time once that half has passed: the append
rolls the segment holding the first tombstone, the cleaner then drops the older records, and
the other half is the margin for the cleaner's polling and for deleting the replaced files
(``file.delete.delay.ms``, at most a tenth of the bound). docs/mail-tools.md has the timeline.
"""

from __future__ import annotations

DAY_MS = 24 * 3600 * 1000
#: How long a tombstone itself stays after compaction: a consumer offline for less still sees it.
TOMBSTONE_KEPT_MS = 7 * DAY_MS
#: Kafka's default ``file.delete.delay.ms``; a short bound lowers it.
FILE_DELETE_DELAY_MS = 60_000


def roll_after_ms(forget_after_s: int) -> int:
    """Half the bound: a segment's roll time, and the delay before a tombstone is sent again."""
    return forget_after_s * 1000 // 2


def feed_topic_configs(forget_after_s: int) -> dict[str, str]:
    """The feed topic's configs: compacted, with the bound's roll time and compaction lag."""
    roll_ms = roll_after_ms(forget_after_s)
    return {
        "cleanup.policy": "compact",
        "segment.ms": str(roll_ms),
        "max.compaction.lag.ms": str(roll_ms),
        "file.delete.delay.ms": str(min(FILE_DELETE_DELAY_MS, forget_after_s * 100)),
        "delete.retention.ms": str(TOMBSTONE_KEPT_MS),
    }
