"""``python -m tools bench``: throughput, latency and memory of the pipeline on the local stack.

One run starts its own stack in ``.stack/bench``, measures the raw limits of Kafka and
PostgreSQL, intake (Kafka topic, HTTP batches, single HTTP events), projection and
end-to-end lag, reads each service's peak RSS, tears everything down, prints a table and
writes it as JSON. ``main.py`` orchestrates; ``report.py`` is pure (tested in
``tests/unit/test_bench_report.py``).
"""
