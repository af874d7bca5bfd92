"""The retention job: appends ``consent.expired`` and ``subject.erased`` when the register's
retention rules say so (``job.py`` decides, ``main.py`` wires it to Kafka and PostgreSQL)."""
