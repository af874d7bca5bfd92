"""The peer in the bench's results: its rows, our rows' ratios to it, the result file."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from events.catalog import SUBMISSION_ADAPTER
from tools.bench import peer_app, workload
from tools.bench.plan import WITH_SERVICES, select
from tools.bench.report import Row, format_table, to_json
from tools.bench.results import Count, Measured, PeerRun, PeerRuns, build_rows
from tools.bench.scaling import load


def peer_runs(audit_rows: int | None = None) -> PeerRuns:
    """Single events at 1,000 and 1,500 req/s, batches at 20,000 and 16,000 events/s."""
    runs = (
        PeerRun(1, 16, 4_000, Count(4_000, 4.0)),
        PeerRun(1, 64, 6_000, Count(6_000, 4.0)),
        PeerRun(1_000, 16, 80, Count(80_000, 4.0)),
        PeerRun(1_000, 64, 64, Count(64_000, 4.0)),
    )
    events = sum(run.events.count for run in runs)
    return PeerRuns(runs, events if audit_rows is None else audit_rows, 6_000)


def measured(peer: PeerRuns | None) -> Measured:
    m = Measured(events=30_000, subjects=6_000, batch_clients=4)
    m.http_batch = Count(30_000, 3.0)  # 10,000/s
    m.end_to_end = Count(30_000, 6.0)  # 5,000/s
    m.capacity = Count(750, 5.0)  # 150 req/s
    m.peer, m.peer_seconds = peer, 4.0
    return m


def by_name(rows: list[Row]) -> dict[str, Row]:
    return {row.name: row for row in rows}


def test_the_best_peer_rate_of_a_shape_and_its_concurrency() -> None:
    runs = peer_runs()
    assert runs.best(batches=False) == (1_500.0, "peer at 64")
    assert runs.best(batches=True) == (20_000.0, "peer at 16")


def test_a_shape_the_peer_did_not_finish_has_no_best() -> None:
    runs = PeerRuns((PeerRun(1, 16, 0, Count(0, 4.0)),), 0, 0)
    assert runs.best(batches=False) == (None, "")
    assert runs.best(batches=True) == (None, "")


def test_our_http_rows_are_set_against_the_peers_best_of_the_same_shape() -> None:
    rows = by_name(build_rows(measured(peer_runs())))
    capacity = rows["HTTP single event, capacity"]
    assert capacity.versus == pytest.approx(150 / 1_500)
    assert capacity.versus_of == "peer at 64"
    batches = rows["HTTP batches -> ledger"]
    assert batches.versus == pytest.approx(10_000 / 20_000)
    assert batches.versus_of == "peer at 16"
    e2e = rows["HTTP batches -> rows visible in PostgreSQL"]
    assert e2e.versus == pytest.approx(5_000 / 20_000)
    assert rows["bare aiokafka producer -> scratch topic"].versus is None


def test_each_load_on_the_peer_is_a_row_in_its_unit() -> None:
    rows = [row for row in build_rows(measured(peer_runs())) if row.section == "peer"]
    assert [(r.name, r.value, r.unit) for r in rows[:4]] == [
        ("single event, 16 concurrent", 1_000.0, "req/s"),
        ("single event, 64 concurrent", 1_500.0, "req/s"),
        ("batches of 1,000, 16 concurrent", 20_000.0, "events/s"),
        ("batches of 1,000, 64 concurrent", 16_000.0, "events/s"),
    ]
    assert "16 closed-loop clients for 4 s" in rows[0].conditions
    assert "(80 requests)" in rows[2].conditions
    tables = rows[4]
    assert tables.value == 154_000
    assert "154,000 events accepted: equal" in tables.conditions
    assert "6,000 subjects' state rows" in tables.conditions


def test_rows_the_peer_lost_are_called_out() -> None:
    (tables,) = [r for r in build_rows(measured(peer_runs(100))) if r.name.startswith("rows in")]
    assert "154,000 events accepted: DIFFERENT" in tables.conditions


def test_without_the_peer_its_section_says_not_measured_and_no_ratio_is_shown() -> None:
    rows = build_rows(measured(None))
    (peer,) = [r for r in rows if r.section == "peer"]
    assert peer.text == "not measured"
    assert all(r.versus is None and r.versus_of == "" for r in rows)


def test_the_table_shows_the_ratio_to_the_peer_in_a_column_of_its_own() -> None:
    lines = format_table(build_rows(measured(peer_runs()))).splitlines()
    (capacity,) = [line for line in lines if "HTTP single event, capacity" in line]
    assert "10% of peer at 64" in capacity
    assert capacity.index("10% of peer at 64") == lines[0].index("vs peer")


def test_the_result_file_keeps_the_ratio_and_bench_compare_still_reads_it(
    tmp_path: Path,
) -> None:
    meta = {"config": {"events": 30_000, "subjects": 6_000, "only": ["peer"]}}
    doc = to_json(build_rows(measured(peer_runs())), meta)
    (capacity,) = [r for r in doc["results"] if r["name"] == "HTTP single event, capacity"]
    assert capacity["versus"] == pytest.approx(0.1)
    assert capacity["versus_of"] == "peer at 64"
    assert capacity["formatted"]["vs_peer"] == "10% of peer at 64"
    path = tmp_path / "new.json"
    path.write_bytes(orjson.dumps(doc))
    assert load(path).rate("peer", "single event, 64 concurrent") == 1_500.0


def test_a_result_file_from_before_the_peer_still_loads(tmp_path: Path) -> None:
    old = {
        "config": {"events": 30_000, "subjects": 6_000, "only": ["raw"]},
        "results": [
            {"section": "raw", "name": "bare aiokafka producer -> scratch topic",
             "value": 12_000.0, "unit": "events/s", "ratio": None, "ratio_of": "",
             "formatted": {"result": "12,000 events/s", "vs_raw_limit": "-"}},
        ],
    }  # fmt: skip
    path = tmp_path / "old.json"
    path.write_bytes(orjson.dumps(old))
    assert load(path).rate("raw", "bare aiokafka producer -> scratch topic") == 12_000.0


def test_the_peer_is_a_measurement_of_its_own_that_needs_no_services() -> None:
    assert select(["peer"]) == ("peer",)
    assert select(["kafka-intake", "peer", "raw"]) == ("raw", "peer", "kafka-intake")
    assert "peer" not in WITH_SERVICES
    assert "http-batches" in WITH_SERVICES


def test_the_peers_arrays_hold_one_entry_per_event_with_its_purpose() -> None:
    submissions = [SUBMISSION_ADAPTER.validate_python(workload.submission(i, 2)) for i in (0, 2)]
    ids, subjects, types, purposes, occurred, payloads = peer_app.columns(submissions)
    assert len(set(ids)) == 2  # a fresh event id each
    assert subjects == ["crm-0000000", "crm-0000000"]
    assert types == ["consent.given", "consent.given"]
    assert purposes == ["newsletter", "analytics"]
    assert occurred == [s.occurred_at for s in submissions]
    assert orjson.loads(payloads[0])["subject_id"] == "crm-0000000"


def test_the_peers_statements_name_its_schema_only() -> None:
    audit, upsert = peer_app.statements("bench_peer_x")
    ddl = peer_app.schema_sql("bench_peer_x")
    assert "bench_peer_x.consent_audit" in audit
    assert "bench_peer_x.consent_state" in upsert
    assert "ON CONFLICT (subject_id) DO UPDATE" in upsert
    assert "CREATE SCHEMA bench_peer_x;" in ddl
