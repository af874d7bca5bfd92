"""Art. 12(3) deadlines: calendar months, month ends, leap years, the date of receipt."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.deadlines import (
    Deadline,
    add_months,
    can_extend,
    deadline,
    deadline_from,
    receipt_date,
    timing,
)

HELSINKI = ZoneInfo("Europe/Helsinki")


@pytest.mark.parametrize(
    ("received", "months", "due"),
    [
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2024, 2, 29), 1, date(2024, 3, 29)),
        (date(2024, 2, 29), 3, date(2024, 5, 29)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 4, 30), 1, date(2024, 5, 30)),
        (date(2024, 3, 31), 1, date(2024, 4, 30)),
        (date(2024, 8, 31), 1, date(2024, 9, 30)),
        (date(2024, 8, 31), 3, date(2024, 11, 30)),
        (date(2022, 11, 30), 3, date(2023, 2, 28)),
        (date(2023, 11, 30), 3, date(2024, 2, 29)),
        (date(2023, 12, 15), 1, date(2024, 1, 15)),
        (date(2024, 3, 31), -1, date(2024, 2, 29)),
    ],
)
def test_add_months_keeps_the_date_or_takes_the_months_last_day(
    received: date, months: int, due: date
) -> None:
    assert add_months(received, months) == due


def test_deadline_of_a_request_received_on_31_january() -> None:
    assert deadline_from(date(2023, 1, 31)) == Deadline(
        received_on=date(2023, 1, 31), due_on=date(2023, 2, 28), extended_due_on=date(2023, 4, 30)
    )
    assert deadline_from(date(2024, 1, 31)).due_on == date(2024, 2, 29)


def test_deadline_of_a_request_received_on_29_february() -> None:
    d = deadline_from(date(2024, 2, 29))
    assert (d.due_on, d.extended_due_on) == (date(2024, 3, 29), date(2024, 5, 29))


def test_deadline_of_a_request_received_on_31_august() -> None:
    d = deadline_from(date(2024, 8, 31))
    assert (d.due_on, d.extended_due_on) == (date(2024, 9, 30), date(2024, 11, 30))


def test_late_evening_in_helsinki_is_already_the_next_day() -> None:
    d = deadline(datetime(2024, 1, 31, 22, 30, tzinfo=UTC), HELSINKI)
    assert d.received_on == date(2024, 2, 1)
    assert d.due_on == date(2024, 3, 1)
    assert d.extended_due_on == date(2024, 5, 1)


@pytest.mark.parametrize(
    ("received_at", "on"),
    [
        # Winter: UTC+2, midnight in Helsinki is 22:00 UTC.
        (datetime(2024, 1, 15, 21, 59, 59, tzinfo=UTC), date(2024, 1, 15)),
        (datetime(2024, 1, 15, 22, 0, tzinfo=UTC), date(2024, 1, 16)),
        # Summer: UTC+3, midnight in Helsinki is 21:00 UTC.
        (datetime(2024, 7, 15, 20, 59, 59, tzinfo=UTC), date(2024, 7, 15)),
        (datetime(2024, 7, 15, 21, 0, tzinfo=UTC), date(2024, 7, 16)),
        # An offset other than UTC is converted, not read as local time.
        (datetime(2024, 1, 15, 23, 30, tzinfo=ZoneInfo("America/New_York")), date(2024, 1, 16)),
    ],
)
def test_the_date_of_receipt_is_the_helsinki_date(received_at: datetime, on: date) -> None:
    assert receipt_date(received_at, HELSINKI) == on


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        receipt_date(datetime(2024, 1, 31, 22, 30), HELSINKI)


D = deadline_from(date(2024, 1, 10))  # due 2024-02-10, extended 2024-04-10


@pytest.mark.parametrize(
    ("extended", "answered_on", "today", "expected"),
    [
        (False, None, date(2024, 1, 20), "open"),
        (False, None, date(2024, 2, 2), "open"),
        (False, None, date(2024, 2, 3), "due_soon"),
        (False, None, date(2024, 2, 10), "due_soon"),
        (False, None, date(2024, 2, 11), "overdue"),
        (False, date(2024, 2, 10), date(2024, 3, 1), "answered"),
        (False, date(2024, 2, 11), date(2024, 3, 1), "answered_late"),
        (True, None, date(2024, 2, 11), "open"),
        (True, None, date(2024, 4, 5), "due_soon"),
        (True, None, date(2024, 4, 11), "overdue"),
        (True, date(2024, 4, 10), date(2024, 4, 20), "answered"),
        (True, date(2024, 4, 11), date(2024, 4, 20), "answered_late"),
    ],
)
def test_timing(extended: bool, answered_on: date | None, today: date, expected: str) -> None:
    assert timing(D, extended=extended, answered_on=answered_on, today=today) == expected


def test_timing_due_soon_window_is_configurable() -> None:
    assert timing(D, extended=False, answered_on=None, today=date(2024, 2, 1)) == "open"
    got = timing(D, extended=False, answered_on=None, today=date(2024, 2, 1), due_soon_days=9)
    assert got == "due_soon"
    assert timing(
        D, extended=False, answered_on=None, today=date(2024, 2, 10), due_soon_days=0
    ) == ("due_soon")
    with pytest.raises(ValueError, match="due_soon_days"):
        timing(D, extended=False, answered_on=None, today=date(2024, 2, 1), due_soon_days=-1)


def test_an_extension_must_be_told_within_the_first_month() -> None:
    d = deadline_from(date(2023, 1, 31))
    assert can_extend(d, date(2023, 1, 31))
    assert can_extend(d, date(2023, 2, 28))
    assert not can_extend(d, date(2023, 3, 1))
    assert not can_extend(d, date(2023, 1, 30))


days = st.dates(min_value=date(1900, 1, 1), max_value=date(2999, 12, 31))
month_counts = st.integers(min_value=-240, max_value=240)


@given(days, month_counts)
def test_add_months_never_skips_or_repeats_a_month(day: date, months: int) -> None:
    result = add_months(day, months)
    assert (result.year * 12 + result.month) - (day.year * 12 + day.month) == months
    assert result.month == (day.month - 1 + months) % 12 + 1


@given(days, month_counts)
def test_add_months_keeps_the_day_when_the_month_has_it(day: date, months: int) -> None:
    result = add_months(day, months)
    assert result.day <= day.day
    last = calendar.monthrange(result.year, result.month)[1]
    if day.day <= last:
        assert result.day == day.day
    else:
        assert result.day == last


@given(days)
def test_deadlines_are_ordered(day: date) -> None:
    d = deadline_from(day)
    assert d.received_on < d.due_on < d.extended_due_on
    assert timedelta(days=28) <= d.due_on - d.received_on <= timedelta(days=31)
