"""`python -m tools bench-steps`: its inputs are what the projector would have, and it reports
every step (no timing is asserted: the numbers are the tool's output, not a test)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from events.catalog import AnyEvent
from projections.rows import purposes_doc, state_from_row
from projections.state import SubjectState, fold
from tests.strategies import ledger
from tools.bench.steps import STEPS, prepare, stored_rows
from tools.cli import main


@given(ledger())
@settings(max_examples=60, deadline=None)
def test_a_stored_row_loads_back_as_the_state_that_wrote_it(events: list[AnyEvent]) -> None:
    states = list(fold(events).values())
    docs = {s.subject_id: purposes_doc(s) for s in states}
    assert [state_from_row(row) for row in stored_rows(states, docs)] == states


def test_batches_carry_each_subjects_state_from_one_batch_to_the_next() -> None:
    batches = prepare(events=300, subjects=40, batch_size=70)
    assert [len(b.fetched) for b in batches] == [70, 70, 70, 70, 20]
    every_event = [r.event for b in batches for r in b.opened]
    latest: dict[str, SubjectState] = {}
    for batch in batches:
        assert set(batch.before) <= set(batch.after)
        assert {row["subject_id"] for row in batch.rows} == set(batch.before)
        latest.update(batch.after)
    assert latest == fold(every_event)
    assert all(r.event.personal.email for b in batches for r in b.opened), "opened"
    assert all(r.event.personal.email is None for b in batches for r in b.decoded), "sealed"


def test_the_command_prints_every_step_with_its_cost(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench-steps", "--events", "200", "--subjects", "50", "--rounds", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    costs = {}
    for line in lines:
        cells = line.split()
        if cells and cells[-1].endswith("%") and cells[-2].replace(".", "").isdigit():
            costs[" ".join(cells[:-2])] = float(cells[-2])
    assert list(costs) == [name for name, _ in STEPS] + ["all of them"]
    assert all(cost >= 0 for cost in costs.values())
    assert costs.pop("all of them") == pytest.approx(sum(costs.values()), abs=0.5)
