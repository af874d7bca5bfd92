"""``python -m tools bench-compare``: the linearity target from result files the bench wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tools.bench import cpu, wal
from tools.bench.cpu import CpuCost
from tools.bench.plan import MEASUREMENTS
from tools.bench.report import MET, NOT_MEASURED, NOT_MET, Row, to_json
from tools.bench.results import Count, Measured, build_rows
from tools.bench.scaling import SCALED, BenchFile, CompareError, compare, load, made_when
from tools.bench.wal import WalCost
from tools.cli import main


def result_file(
    tmp_path: Path,
    name: str,
    events: int,
    subjects: int,
    seconds: float,
    only: tuple[str, ...] = MEASUREMENTS,
    replay_processes: int | None = 2,
    cpu_us: float | None = None,
    wal_bytes: float | None = None,
    started_at: str = "2026-11-26T06:00:00+00:00",
    wall_s: float | None = None,
    warm_up: int | None = 40_000,
    warmed: bool = True,
) -> Path:
    """A file as the bench writes it, every scaled path at ``events / seconds`` events/s (and,
    if given, at ``cpu_us`` of the machine's CPU per event)."""
    m = Measured(events, subjects)
    done = Count(events, seconds)
    m.kafka_intake = m.http_batch = m.capacity = m.projection = m.end_to_end = m.replay = done
    meta: dict[str, Any] = {
        "started_at": started_at,
        "config": {"events": events, "subjects": subjects, "only": list(only)},
        "replay_processes": replay_processes,
    }
    if warm_up is not None:  # None: a file from before the warm-up
        meta["config"]["warm_up"] = warm_up
        # What the run did: null when the warm-up failed or was not asked for.
        meta["broker_warm_up"] = (
            {"records": warm_up, "seconds": 3.0} if warm_up and warmed else None
        )
    if wall_s is not None:
        meta["wall_s"] = wall_s
    if cpu_us is not None:
        cost = CpuCost(events, seconds, cpu_us, {"projector": cpu_us / 2})
        meta["cpu_per_event"] = cpu.to_json({window: cost for *_, window in SCALED})
    if wal_bytes is not None:
        written = WalCost(events, wal_bytes)
        meta["wal_per_event"] = wal.to_json({window: written for *_, window in SCALED})
    path = tmp_path / name
    path.write_bytes(orjson.dumps(to_json(build_rows(m), meta)))
    return path


def growth(rows: list[Row]) -> list[float | None]:
    return [r.value for r in rows]


def test_every_scaled_path_is_a_row_the_bench_writes(tmp_path: Path) -> None:
    run = load(result_file(tmp_path, "a.json", 1_000, 10, 1.0))
    assert all(run.rate(section, name) == 1_000.0 for section, name, _ in SCALED)


def test_cost_per_event_grows_by_the_ratio_of_rates_over_the_smaller_runs_median(
    tmp_path: Path,
) -> None:
    smaller = [
        load(result_file(tmp_path, f"s{i}.json", 30_000, 6_000, seconds))
        for i, seconds in enumerate([10.0, 15.0, 30.0])  # 3,000 / 2,000 / 1,000 events/s
    ]
    same = load(result_file(tmp_path, "l.json", 5_000_000, 1_000_000, 2_500.0))  # 2,000/s
    rows = compare(smaller, same)
    assert growth(rows) == [1.0] * len(SCALED)
    assert all(r.target is not None and r.target.verdict == MET for r in rows)
    assert "median 2,000 events/s (1,000 to 3,000)" in rows[0].conditions
    slower = load(result_file(tmp_path, "m.json", 5_000_000, 1_000_000, 5_000.0))  # 1,000/s
    rows = compare(smaller, slower)
    assert growth(rows) == [2.0] * len(SCALED)
    assert all(r.target is not None and r.target.verdict == NOT_MET for r in rows)


def test_cpu_per_event_grows_by_the_larger_runs_cost_over_the_smaller_runs_median(
    tmp_path: Path,
) -> None:
    smaller = [
        load(result_file(tmp_path, f"s{i}.json", 30_000, 6_000, 15.0, cpu_us=us))
        for i, us in enumerate([400.0, 500.0, 900.0])
    ]
    large = load(result_file(tmp_path, "l.json", 5_000_000, 1_000_000, 2_500.0, cpu_us=800.0))
    rows = compare(smaller, large)
    assert len(rows) == 2 * len(SCALED)
    by_cpu = rows[len(SCALED) :]
    assert [r.name for r in by_cpu] == [f"{s}: CPU per event ({w})" for s, _, w in SCALED]
    assert growth(by_cpu) == [1.6] * len(SCALED)
    assert all(r.target is not None and r.target.verdict == NOT_MET for r in by_cpu)
    assert "median 500 µs of CPU per event (400 to 900)" in by_cpu[0].conditions
    assert "5,000,000 events, 1,000,000 subjects: 800 µs of CPU per event" in by_cpu[0].conditions


def test_cpu_rows_come_only_with_files_that_read_cpu(tmp_path: Path) -> None:
    """Files from before the bench read CPU get the rate rows alone; a file without a reading
    among files with one shows that path's CPU as not measured."""
    old = load(result_file(tmp_path, "s.json", 30_000, 6_000, 15.0))
    large_old = load(result_file(tmp_path, "l.json", 5_000_000, 1_000_000, 2_500.0))
    assert len(compare([old], large_old)) == len(SCALED)
    large = load(result_file(tmp_path, "lc.json", 5_000_000, 1_000_000, 2_500.0, cpu_us=800.0))
    by_cpu = compare([old], large)[len(SCALED) :]
    assert all(r.value is None for r in by_cpu)
    assert all(r.target is not None and r.target.verdict == NOT_MEASURED for r in by_cpu)


def test_postgresqls_log_per_event_is_shown_beside_the_costs_without_a_verdict(
    tmp_path: Path,
) -> None:
    """A byte count the machine's speed does not move: it says whether PostgreSQL's share grew,
    but it is one part of the cost, so the target is not judged on it."""
    smaller = [
        load(result_file(tmp_path, f"s{i}.json", 30_000, 6_000, 15.0, wal_bytes=b))
        for i, b in enumerate([2048.0, 3072.0, 4096.0])
    ]
    large = load(result_file(tmp_path, "l.json", 5_000_000, 1_000_000, 2_500.0, wal_bytes=9216.0))
    rows = compare(smaller, large)
    assert len(rows) == 2 * len(SCALED)  # no CPU was read: rates, then the log
    by_log = rows[len(SCALED) :]
    assert [r.name for r in by_log] == [
        f"{s}: PostgreSQL's log per event ({w})" for s, _, w in SCALED
    ]
    assert growth(by_log) == [3.0] * len(SCALED)
    assert all(r.target is None for r in by_log)
    assert "median 3.00 KB of log per event (2.00 to 4.00)" in by_log[0].conditions
    assert "1,000,000 subjects: 9.00 KB of log per event" in by_log[0].conditions
    assert len(
        compare(smaller[:1], load(result_file(tmp_path, "o.json", 5_000_000, 1_000_000, 9.0)))
    ) == 2 * len(SCALED)


def test_a_replay_read_over_the_whole_command_is_not_compared_with_a_rebuild(
    tmp_path: Path,
) -> None:
    """Files from before the replay's CPU was read over its rebuild alone held the whole
    command (start-up and comparison too) under "replay": comparing that with a rebuild would
    favour whichever run has the larger share of fixed cost."""
    doc = orjson.loads(
        result_file(tmp_path, "s.json", 30_000, 6_000, 15.0, cpu_us=500.0).read_bytes()
    )
    doc["cpu_per_event"]["replay"] = doc["cpu_per_event"].pop(cpu.Window.REPLAY)
    (tmp_path / "s.json").write_bytes(orjson.dumps(doc))
    large = load(result_file(tmp_path, "l.json", 5_000_000, 1_000_000, 2_500.0, cpu_us=800.0))
    by_cpu = {r.name: r for r in compare([load(tmp_path / "s.json")], large)[len(SCALED) :]}
    replay = by_cpu["replay: CPU per event (replay rebuild)"]
    assert replay.value is None
    assert replay.target is not None
    assert replay.target.verdict == NOT_MEASURED
    assert by_cpu["projection: CPU per event (projection)"].value == 1.6


def test_a_met_growth_below_the_large_size_is_not_shown(tmp_path: Path) -> None:
    smaller = [load(result_file(tmp_path, "s.json", 30_000, 6_000, 15.0))]
    larger = load(result_file(tmp_path, "l.json", 1_000_000, 200_000, 500.0))
    (row, *_) = compare(smaller, larger)
    assert row.target is not None
    assert row.target.verdict == "not shown (run with 1,000,000 events; the target is at 5,000,000)"


def test_a_path_left_out_of_either_run_is_not_measured(tmp_path: Path) -> None:
    smaller = [load(result_file(tmp_path, "s.json", 30_000, 6_000, 15.0))]
    doc = orjson.loads(result_file(tmp_path, "l.json", 5_000_000, 1_000_000, 2_500.0).read_bytes())
    for item in doc["results"]:
        if item["section"] == "replay":
            item["value"] = None
    (tmp_path / "l.json").write_bytes(orjson.dumps(doc))
    rows = {r.name: r for r in compare(smaller, load(tmp_path / "l.json"))}
    replay = rows["replay: full rebuild from offset 0 (consent-ledger replay)"]
    assert replay.value is None
    assert replay.target is not None
    assert replay.target.verdict == NOT_MEASURED


def test_the_files_must_be_runs_of_one_size_then_a_larger_one(tmp_path: Path) -> None:
    a = load(result_file(tmp_path, "a.json", 30_000, 10_000, 15.0))
    b = load(result_file(tmp_path, "b.json", 60_000, 10_000, 15.0))
    with pytest.raises(CompareError, match="the smaller runs differ in size"):
        compare([a, b], b)
    with pytest.raises(CompareError, match="the last file must be the larger run"):
        compare([b], a)


def test_only_the_size_may_differ(tmp_path: Path) -> None:
    """Not the events per subject, nor the measurements made before the compared ones."""
    large = load(result_file(tmp_path, "l.json", 5_000_000, 1_000_000, 2_500.0))
    three = load(result_file(tmp_path, "three.json", 30_000, 10_000, 15.0))
    with pytest.raises(CompareError, match="3 events per subject in the smaller runs, 5 events"):
        compare([three], large)
    some = load(result_file(tmp_path, "some.json", 30_000, 6_000, 15.0, ("projection", "replay")))
    with pytest.raises(CompareError, match=r"different measurements \(projection,replay / raw,"):
        compare([some], large)
    assert compare([load(result_file(tmp_path, "all.json", 30_000, 6_000, 15.0))], large)


def test_the_replays_must_have_run_in_as_many_processes(tmp_path: Path) -> None:
    large = load(result_file(tmp_path, "l.json", 5_000_000, 1_000_000, 2_500.0))
    one = load(result_file(tmp_path, "one.json", 30_000, 6_000, 15.0, replay_processes=1))
    with pytest.raises(CompareError, match=r"different numbers of processes \(1 / 2\); give"):
        compare([one], large)
    older = orjson.loads(result_file(tmp_path, "old.json", 30_000, 6_000, 15.0).read_bytes())
    del older["replay_processes"]  # written before replays ran in several processes: in one
    (tmp_path / "old.json").write_bytes(orjson.dumps(older))
    assert load(tmp_path / "old.json").replay_processes == 1


def test_the_runs_must_have_warmed_the_broker_up_alike(tmp_path: Path) -> None:
    large = load(result_file(tmp_path, "l.json", 5_000_000, 1_000_000, 2_500.0))
    cold = load(result_file(tmp_path, "cold.json", 30_000, 6_000, 15.0, warm_up=0))
    with pytest.raises(CompareError, match=r"different numbers of records \(0 / 40,000\); the"):
        compare([cold], large)
    older = load(result_file(tmp_path, "old.json", 30_000, 6_000, 15.0, warm_up=None))
    assert older.warmed_up == 0, "a file from before the warm-up had none"
    with pytest.raises(CompareError, match="give every run the same --warm-up"):
        compare([older], large)
    failed = load(result_file(tmp_path, "failed.json", 30_000, 6_000, 15.0, warmed=False))
    assert failed.warmed_up == 0, "asked for 40,000 records, but the warm-up failed"
    with pytest.raises(CompareError, match=r"\(0 / 40,000\).*a warm-up that failed counts"):
        compare([failed], large)
    assert compare([load(result_file(tmp_path, "warm.json", 30_000, 6_000, 15.0))], large)


def test_it_says_when_the_smaller_runs_were_made_around_the_larger_one(tmp_path: Path) -> None:
    def run(name: str, started_at: str, wall_s: float | None = 60.0) -> BenchFile:
        events, subjects = (5_000_000, 1_000_000) if name == "large" else (30_000, 6_000)
        return load(
            result_file(
                tmp_path, name, events, subjects, 10.0, started_at=started_at, wall_s=wall_s
            )
        )

    large = run("large", "2026-11-27T03:42:00+00:00", wall_s=4_920.0)  # to 05:04
    smaller = [
        run("a", "2026-11-27T03:20:00+00:00"),  # ends 21 min before
        run("b", "2026-11-27T05:04:30+00:00"),  # begins half a minute after
        run("c", "2026-11-27T05:09:00+00:00"),
        run("d", "2026-11-27T04:00:00+00:00"),  # inside it
        run("e", "2026-11-27T08:00:00+00:00", wall_s=None),  # an older file: not placed
    ]
    assert made_when(smaller, large) == (
        "when: the larger run ran from 2026-11-27 03:42 to 05:04 UTC; of the 4 smaller runs, "
        "1 ended 21 min before it began, 2 began 0 to 5 min after it ended, 1 ran while it ran. "
        "The machine's speed moves within minutes, so the smaller runs belong right before or "
        "after the larger one."
    )
    assert made_when(smaller[-1:], large) is None
    assert made_when(smaller, run("old", "2026-11-27T03:42:00+00:00", wall_s=None)) is None


def test_the_command_prints_the_table_and_names_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = result_file(tmp_path, "s.json", 30_000, 6_000, 15.0)
    large = result_file(tmp_path, "l.json", 5_000_000, 1_000_000, 5_000.0)
    assert main(["bench-compare", str(small), str(large)]) == 0
    out = capsys.readouterr().out
    assert "replay: full rebuild from offset 0" in out
    assert "2.00 x" in out
    assert "when:" not in out, "files that do not say how long they ran are not placed"
    placed = result_file(tmp_path, "p.json", 5_000_000, 1_000_000, 5_000.0, wall_s=5_100.0)
    after = result_file(
        tmp_path, "a.json", 30_000, 6_000, 15.0, started_at="2026-11-26T07:27:00+00:00", wall_s=60
    )
    assert main(["bench-compare", str(after), str(placed)]) == 0
    assert "when: the larger run ran from 2026-11-26 06:00 to 07:25 UTC" in capsys.readouterr().out
    (tmp_path / "bad.json").write_bytes(b'{"started_at": "x", "config": {"events": "many"}}')
    assert main(["bench-compare", str(tmp_path / "bad.json"), str(large)]) == 2
    err = capsys.readouterr().err
    assert "bad.json: not a bench result file (config.events:" in err
