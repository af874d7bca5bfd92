"""The pure parts of ``python -m tools bench``: percentiles, ratios, verdicts, the table."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from services.config import Settings
from tools.bench.children import run_command, run_measured, vm_hwm_mb
from tools.bench.http_load import Outcome
from tools.bench.main import BenchBusyError, configure, one_run_at_a_time
from tools.bench.pipeline import LagTracker, ends, firsts, folded, request_shape
from tools.bench.plan import MEASUREMENTS, select
from tools.bench.report import (
    MET,
    NOT_MEASURED,
    NOT_MET,
    Latencies,
    Row,
    Target,
    all_of,
    at_least,
    at_most,
    below,
    format_table,
    latencies,
    percentile,
    rate,
    ratio,
    to_json,
    under_load,
)
from tools.bench.results import Count, Measured, OpenLoop, build_rows
from tools.cli import main as cli_main


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1 .. 100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0, 1.0, 3.0], 50) == 3.0  # order of input does not matter
    assert percentile([5.0], 99) == 5.0
    assert percentile([1.0, 2.0], 1) == 1.0


@pytest.mark.parametrize("p", [0, -1, 101])
def test_percentile_rejects_out_of_range(p: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], p)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_latencies_summary() -> None:
    summary = latencies([10.0] * 98 + [200.0, 900.0])
    assert summary is not None
    assert (summary.count, summary.p50_ms, summary.p99_ms, summary.max_ms) == (
        100,
        10.0,
        200.0,
        900.0,
    )
    assert latencies([]) is None


def test_rate_and_ratio() -> None:
    assert rate(10_000, 2.0) == 5_000.0
    assert rate(10, 0.0) is None
    assert rate(0, 1.0) is None
    assert ratio(5_000.0, 20_000.0) == 0.25
    assert ratio(None, 1.0) is None
    assert ratio(1.0, None) is None
    assert ratio(1.0, 0.0) is None


def test_verdicts() -> None:
    assert at_least(20_000.0, 20_000.0) == MET
    assert at_least(19_999.0, 20_000.0) == NOT_MET
    assert at_least(None, 1.0) == NOT_MEASURED  # failed or left out: neither met nor not
    assert at_most(None, 1.0) == NOT_MEASURED
    assert below(None, 1.0) == NOT_MEASURED
    assert at_most(50.0, 50.0) == MET
    assert at_most(50.1, 50.0) == NOT_MET
    assert below(249.9, 250.0) == MET
    assert below(250.0, 250.0) == NOT_MET
    assert all_of(MET, MET) == MET
    assert all_of(MET, NOT_MET) == NOT_MET


def test_a_latency_met_under_a_lighter_load_is_not_shown() -> None:
    assert under_load(MET, 5_000, 5_000, "events/s") == MET
    assert under_load(NOT_MET, 200, 5_000, "events/s") == NOT_MET
    shown = under_load(MET, 200, 5_000, "events/s")
    assert shown.startswith("not shown")
    assert "200 events/s" in shown
    assert "5,000" in shown


def test_table_aligns_columns_and_names_each_section_once() -> None:
    rows = [
        Row("raw", "producer", 41_234.5, "events/s", "10,000 events"),
        Row("raw", "copy", 90_000.0, "rows/s"),
        Row(
            "intake",
            "HTTP batches",
            8_000.0,
            "events/s",
            ratio=8_000 / 41_234.5,
            ratio_of="raw producer",
            target=Target(">= 20,000 events/s", NOT_MET),
        ),
        Row("replay", "replay", None, "", text="n/a (replay does not exist yet)"),
        Row("memory", "intake", None, "MB"),
    ]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == [
        "section", "measurement", "result", "vs", "raw", "limit", "vs", "peer", "target", "verdict",
        "conditions",
    ]  # fmt: skip
    assert set(lines[1]) <= {"-", " "}
    body = lines[2:]
    assert len(body) == len(rows)
    assert body[0].startswith("raw ")
    assert body[1].startswith("   ")
    assert "41,234 events/s" in body[0]
    assert "10,000 events" in body[0]
    assert "19% of raw producer" in body[2]
    assert ">= 20,000 events/s" in body[2]
    assert "not met" in body[2]
    assert "n/a (replay does not exist yet)" in body[3]
    assert body[4].split()[-1] == "-"  # an unmeasured value reads "-"
    # every column starts at the same place on every line
    start = lines[0].index("result")
    assert all(line[start - 2 : start] == "  " for line in body if len(line) > start)


def test_json_keeps_values_and_formatted_cells() -> None:
    row = Row("raw", "producer", 1_500.0, "events/s")
    doc = to_json([row], {"wall_s": 12.0})
    assert doc["wall_s"] == 12.0
    (item,) = doc["results"]
    assert item["value"] == 1_500.0
    assert item["formatted"] == {"result": "1,500 events/s", "vs_raw_limit": "-", "vs_peer": "-"}


def test_rows_compare_with_the_raw_limit_that_applies() -> None:
    m = Measured(events=10_000, subjects=1_000, batch_clients=4)
    m.raw_producer = Count(10_000, 0.25)  # 40,000/s
    m.raw_copy = Count(10_000, 0.1)  # 100,000/s
    m.http_batch = Count(10_000, 1.0)  # 10,000/s
    m.end_to_end = Count(10_000, 0.4)  # 25,000/s: 62.5% of the producer
    m.projection = Count(10_000, 0.5)  # 20,000/s: 20% of COPY
    m.replay, m.replay_equal = Count(10_000, 2.0), True  # 5,000/s: below the 30,000 target
    m.kafka_intake = Count(10_000, None)
    m.lag = OpenLoop(200, 10, 2_000, 2_000, 200, latencies([5.0] * 100))
    m.peak_rss_mb = {"intake": 120.0, "projector": 260.0}
    m.replay_peak_rss_mb = 300.0
    by_name = {row.name: row for row in build_rows(m)}

    batch = by_name["HTTP batches -> ledger"]
    assert batch.ratio == pytest.approx(0.25)
    assert batch.ratio_of == "raw producer"
    projection = by_name["pre-filled ledger -> PostgreSQL"]
    assert projection.ratio == pytest.approx(0.2)
    assert projection.ratio_of == "raw COPY"
    e2e = by_name["HTTP batches -> rows visible in PostgreSQL"]
    assert e2e.value == pytest.approx(25_000)
    assert e2e.target is not None
    assert e2e.target.verdict == MET
    assert by_name["Kafka intake topic -> ledger"].text == "did not finish"
    lag = by_name["lag p99, HTTP 202 -> row visible"]
    assert lag.target is not None
    assert lag.target.verdict.startswith("not shown")
    replay = by_name["full rebuild from offset 0 (consent-ledger replay)"]
    assert replay.value == pytest.approx(5_000)
    assert replay.target is not None
    assert replay.target.verdict == NOT_MET
    assert "compared with live: equal" in replay.conditions
    rss = by_name["projector peak RSS (VmHWM)"]
    assert rss.target is not None
    assert rss.target.verdict == NOT_MET
    small = by_name["intake peak RSS (VmHWM)"]  # under 250 MB, but with 1,000 subjects
    assert small.target is not None
    assert small.target.verdict == (
        "not shown (measured with 1,000 subjects; the target is at 1,000,000)"
    )
    assert by_name["HTTP single event, capacity"].value is None  # not measured
    replay_rss = by_name["replay peak RSS (VmHWM)"]
    assert replay_rss.value == 300.0
    assert replay_rss.target is None  # a command: the services' target is not its


def test_memory_under_the_limit_with_a_million_subjects_is_met() -> None:
    m = Measured(events=5_000_000, subjects=1_000_000)
    m.peak_rss_mb = {"feed": 80.0}
    (rss,) = [r for r in build_rows(m) if r.name == "feed peak RSS (VmHWM)"]
    assert rss.target is not None
    assert rss.target.verdict == MET


def test_e2e_below_half_the_producer_is_not_met() -> None:
    m = Measured(events=1, subjects=1)
    m.raw_producer = Count(100_000, 1.0)
    m.end_to_end = Count(30_000, 1.0)  # above 20,000/s, but 30% of the producer
    (e2e,) = [r for r in build_rows(m) if r.name.startswith("HTTP batches -> rows")]
    assert e2e.target is not None
    assert e2e.target.verdict == NOT_MET


def test_request_shape_batches_only_above_500_events_per_second() -> None:
    assert request_shape(200) == (200, 1)
    assert request_shape(500) == (500, 1)
    assert request_shape(5_000) == (500, 10)


def test_ends_and_lag_tracking() -> None:
    assert ends([(0, 4), (1, 2), (0, 9)]) == {0: 10, 1: 3}
    assert firsts([(0, 4), (1, 2), (0, 9), (0, 3)]) == {0: 3, 1: 2}
    # a phase's records: offsets 3..9 in partition 0, 2 in partition 1, of which 0..6 are folded
    assert folded({0: 7}, {0: 10, 1: 3}, {0: 3, 1: 2}) == 4
    assert folded({0: 7, 1: 9}, {0: 10, 1: 3}) == 10  # from each partition's start
    tracker = LagTracker()
    tracker.accepted(Outcome(scheduled=0.9, done=1.0, status=202, positions=[(0, 5)]))
    tracker.accepted(Outcome(scheduled=0.9, done=1.0, status=503, positions=[]))
    tracker.observe({0: 5}, now=1.1)  # offset 5 not yet folded
    assert tracker.outstanding == 1
    tracker.observe({0: 6}, now=1.25)
    assert tracker.outstanding == 0
    assert tracker.lags_ms == [pytest.approx(250.0)]
    assert tracker.due_lags_ms == [pytest.approx(350.0)]


def test_peak_rss_is_read_from_vm_hwm() -> None:
    status = "Name:\tpython\nVmPeak:\t  900000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  1000 kB\n"
    assert vm_hwm_mb(status) == 200.0
    assert vm_hwm_mb("Name:\tpython\n") is None


def test_a_command_reports_its_own_peak_rss_not_its_parents() -> None:
    ballast = bytearray(400 * 1024 * 1024)  # the parent's memory: the child must not count it
    ballast[::4096] = b"x" * len(range(0, len(ballast), 4096))  # touched, so resident
    done = run_command("replay", Settings(), "--help")
    del ballast
    assert "--keep" in done.stdout
    assert 10 < done.peak_rss_mb < 300  # a Python process with the service's imports


def test_a_commands_peak_rss_counts_the_processes_it_started() -> None:
    worker = (
        "import time; b = bytearray(200 * 1024 * 1024); b[::4096] = bytes(len(b) // 4096); "
        "time.sleep(1)"
    )
    script = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {worker!r}])"
    heard: list[int | None] = []
    done = run_measured([sys.executable, "-c", script], dict(os.environ), heard.append)
    assert done.peak_rss_mb > 200  # the worker's 200 MB, which the command itself never held
    (pid, gone) = heard  # its pid while it ran (for the CPU sampler), then that it ended
    assert isinstance(pid, int)
    assert pid != os.getpid()
    assert gone is None


def test_large_changes_the_defaults_and_explicit_sizes_win() -> None:
    default = configure()
    assert (default.events, default.subjects, default.large) == (30_000, 6_000, False)
    large = configure(large=True)
    assert (large.events, large.subjects) == (5_000_000, 1_000_000)
    # one shape, so that bench-compare takes a default run as the large run's base
    assert default.events * large.subjects == large.events * default.subjects
    assert large.lag_rate == 5_000.0  # the load the lag target names
    assert large.timeout_s >= large.events / 500
    assert configure(large=True, events=10).events == 10


def test_the_broker_is_warmed_up_unless_told_not_to(capsys: pytest.CaptureFixture[str]) -> None:
    assert configure().warm_up == 40_000
    assert configure(large=True).warm_up == 40_000, "the same, so that the runs compare"
    assert configure(warm_up=0).warm_up == 0
    with pytest.raises(SystemExit):
        cli_main(["bench", "--warm-up", "-1"])
    assert "argument --warm-up: must be at least 0" in capsys.readouterr().err


def test_the_feed_target_counts_the_slowest_withdrawal_and_any_missing_one() -> None:
    m = Measured(events=1, subjects=1)
    m.feed = Latencies(100, 120.0, 400.0, 450.0)
    (row,) = [r for r in build_rows(m) if r.section == "feed"]
    assert row.value == 450.0
    assert row.target is not None
    assert row.target.verdict == MET
    m.feed_missing = 1
    (row,) = [r for r in build_rows(m) if r.section == "feed"]
    assert row.target is not None
    assert row.target.verdict == NOT_MET
    assert "1 never seen within 30 s" in row.conditions


def test_only_keeps_the_run_order_and_brings_the_projection_to_a_replay() -> None:
    assert select([]) == MEASUREMENTS
    assert select(["kafka-intake", "raw"]) == ("raw", "kafka-intake")
    assert select(["replay"]) == ("projection", "replay")  # it rebuilds what projection appended
    assert configure(only=["lag"]).only == ("lag",)
    with pytest.raises(ValueError, match="no measurement named bogus; there are raw, "):
        select(["raw", "bogus"])


def test_a_measurement_left_out_is_not_measured_not_failed() -> None:
    rows = {r.name: r for r in build_rows(Measured(events=1, subjects=1))}
    for name in (
        "HTTP single event, capacity",
        "full rebuild from offset 0 (consent-ledger replay)",
    ):
        row = rows[name]
        assert row.target is not None
        assert (row.value, row.conditions, row.target.verdict) == (
            None,
            "not measured",
            NOT_MEASURED,
        )
    feed = rows["withdrawal -> feed says not eligible, max"].target
    assert feed is not None
    assert feed.verdict == NOT_MEASURED


def test_a_second_bench_run_is_refused_while_one_holds_the_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second run would remove the first one's topics and database as leftovers."""
    monkeypatch.setenv("CONSENT_LEDGER_STACK_DIR", str(tmp_path))
    out = tmp_path / "result.json"
    with one_run_at_a_time(tmp_path / "bench"):
        busy = rf"another bench run \(pid {os.getpid()}\)"
        with pytest.raises(BenchBusyError, match=busy), one_run_at_a_time(tmp_path / "bench"):
            pass
        assert cli_main(["bench", "--only", "raw", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"another bench run (pid {os.getpid()}) is using the bench stack in {tmp_path}" in err
    assert "nothing was measured" in err
    assert not out.exists()
    with one_run_at_a_time(tmp_path / "bench"):  # the first run's end let it go
        assert (tmp_path / "bench" / "bench.lock").read_text() == f"{os.getpid()}\n"
