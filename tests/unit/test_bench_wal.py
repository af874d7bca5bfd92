"""The bench's reading of PostgreSQL's write-ahead log: the pure parts."""

from __future__ import annotations

from tools.bench import wal
from tools.bench.cpu import Window
from tools.bench.report import format_grid
from tools.bench.samples import interpolated
from tools.bench.wal import WalCost, WalReading


def test_the_log_per_event_is_the_positions_moved_over_the_events() -> None:
    assert wal.cost(WalReading(1.0, 1_000.0), WalReading(3.0, 5_096.0), 2) == WalCost(2, 2_048.0)
    assert wal.cost(WalReading(1.0, 1_000.0), WalReading(3.0, 5_096.0), 0) is None
    assert wal.cost(WalReading(3.0, 1_000.0), WalReading(3.0, 5_096.0), 2) is None


def test_a_window_end_is_cut_between_the_readings_around_it() -> None:
    samples = [WalReading(0.0, 0.0), WalReading(4.0, 8_000.0)]
    mix = wal._mix  # the sampler's own, as it cuts its samples
    assert interpolated(samples, 1.0, mix) == WalReading(1.0, 2_000.0)
    assert interpolated(samples, 4.0, mix) is samples[1]
    assert interpolated(samples, 4.5, mix) is None
    assert interpolated(samples, -1.0, mix) is None


def test_the_table_and_the_file_say_bytes_per_event_and_in_all() -> None:
    costs = {Window.REPLAY: WalCost(30_000, 2_150.4), Window.PROJECTION: WalCost(10, 0.0)}
    lines = wal.cells(costs)
    assert lines[0] == ("replay rebuild", "30,000", "2.10 KB", "61.5 MB")
    assert lines[1] == ("projection", "10", "0.00 KB", "0.0 MB")
    assert format_grid(wal.HEADER, lines).splitlines()[0].startswith("measurement")
    assert wal.to_json(costs)["replay rebuild"] == {"count": 30_000, "bytes_per_event": 2_150.4}


class _Gone:
    """A connection whose server went away."""

    async def fetchval(self, query: str) -> float:
        raise OSError("connection lost")


async def test_a_reading_lost_with_the_server_leaves_the_samples_it_has() -> None:
    sampler = wal.WalSampler("postgresql://unused")
    sampler._conn = _Gone()  # type: ignore[assignment]
    sampler.samples = [WalReading(0.0, 0.0), WalReading(2.0, 4_000.0)]
    assert await sampler.between(0.0, 2.0, 2) == WalCost(2, 2_000.0)
    assert len(sampler.samples) == 2
