"""The bench's reading of intake's Kafka transactions: parsed from the real metric's exposition,
over HTTP as the bench reads it, and a lost reading is None, not a failed measurement."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from prometheus_client import generate_latest

from services.metrics import APPEND_BATCH_RECORDS
from tools.bench import transactions
from tools.bench.transactions import Grouping, Totals
from tools.stack.ports import free_port


def test_the_totals_follow_what_intake_observes() -> None:
    before = transactions.totals(generate_latest().decode())
    for size in (30, 20, 1):
        APPEND_BATCH_RECORDS.observe(size)
    after = transactions.totals(generate_latest().decode())
    assert transactions.grouping(before, after) == Grouping(transactions=3, records=51)
    assert Grouping(3, 51).per_transaction == 17


def test_no_transaction_in_a_measurement_is_no_grouping() -> None:
    same = Totals(records=100, transactions=4)
    assert transactions.grouping(same, same) is None


def test_metrics_without_the_histogram_are_refused() -> None:
    with pytest.raises(ValueError, match="consent_ledger_append_batch_records"):
        transactions.totals("other_metric_sum 3\nother_metric_count 1\n")


@pytest.fixture
def metrics_server() -> Iterator[str]:
    """A stand-in service whose /metrics is this process's registry, as intake's is its own."""

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = generate_latest() if self.path == "/metrics" else b""
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = HTTPServer(("127.0.0.1", free_port()), Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


async def test_the_bench_reads_the_totals_over_http(metrics_server: str) -> None:
    before = await transactions.read(metrics_server)
    APPEND_BATCH_RECORDS.observe(1000)
    after = await transactions.read(metrics_server)
    assert before is not None
    assert after is not None
    assert transactions.grouping(before, after) == Grouping(transactions=1, records=1000)


async def test_a_service_that_does_not_answer_gives_no_reading() -> None:
    assert await transactions.read(f"http://127.0.0.1:{free_port()}") is None


def test_the_table_and_the_result_file() -> None:
    groups = {"capacity": Grouping(transactions=90, records=2412)}
    assert transactions.cells(groups) == [("capacity", "90", "2,412", "26.8")]
    assert transactions.to_json(groups) == {
        "capacity": {"transactions": 90, "records": 2412, "records_per_transaction": 26.8}
    }
