"""Developer tooling: the local Kafka + PostgreSQL stack, ``run``, the benchmark and the
reference audience consumer. Kept out of the product (not in the wheel, not in the Docker
image) so that what ships is what runs in production; run it from a clone as
``python -m tools`` (tools/cli.py). It may import the product; the product never imports it
(tests/unit/test_import_rules.py)."""
