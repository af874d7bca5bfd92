"""Deadlines of rights requests (GDPR Art. 12(3)), in calendar months, without a clock.

Art. 12(3): the controller answers "without undue delay and in any event within one month of
receipt of the request"; where necessary it may extend that "by two further months", telling the
person, with reasons, within the first month.

Counting follows Regulation (EEC, Euratom) No 1182/71, Art. 3(2)(c): a period in months ends with
the expiry of the day which, in the last month, falls on the same date as the day from which it
runs; when the last month has no such date, with the expiry of its last day. So:

* the request is received on a calendar date in the register's time zone (:func:`receipt_date`);
* the answer is due on the same date one month later, or that month's last day (31 January ->
  28 or 29 February); the extended deadline is the same date three months after receipt (receipt
  + 1 + 2 months, counted from receipt so that a clipped first month does not shorten the rest:
  31 January -> 30 April, not 28 April).

The due date is the last day on which an answer is on time. Art. 3(4) of 1182/71 would move a
period ending on a Saturday, Sunday or public holiday to the next working day; that is not done
here: holidays depend on the country, and answering by the calendar date is never late. Nothing
here reads the clock: "now" is always a parameter, so a replay gives the same answer.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

#: Months to answer in, and months when extended (Art. 12(3): one, plus two further).
ANSWER_MONTHS = 1
EXTENDED_MONTHS = 3

RequestTiming = Literal["open", "due_soon", "overdue", "answered", "answered_late"]


def add_months(day: date, months: int) -> date:
    """The same day of the month ``months`` later (or earlier, when negative), or that month's
    last day when it has no such date: 31 Jan + 1 = 28/29 Feb; 29 Feb 2024 + 12 = 28 Feb 2025."""
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))


def receipt_date(received_at: datetime, tz: ZoneInfo) -> date:
    """The calendar date of receipt in the register's time zone (23:30 UTC on 31 January is
    1 February in Helsinki). A naive time has no date anywhere, so it is refused."""
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError(f"received_at must be timezone-aware, got {received_at.isoformat()}")
    return received_at.astimezone(tz).date()


@dataclass(frozen=True)
class Deadline:
    """When a request was received and when its answer is due (last day on time)."""

    received_on: date
    due_on: date
    extended_due_on: date

    def due(self, *, extended: bool) -> date:
        """The deadline that applies: the extended one once the extension was notified."""
        return self.extended_due_on if extended else self.due_on


def deadline_from(received_on: date) -> Deadline:
    """The deadline of a request received on that date (in the register's time zone)."""
    return Deadline(
        received_on=received_on,
        due_on=add_months(received_on, ANSWER_MONTHS),
        extended_due_on=add_months(received_on, EXTENDED_MONTHS),
    )


def deadline(received_at: datetime, tz: ZoneInfo) -> Deadline:
    """The deadline of a request received at that moment, dated in ``tz``."""
    return deadline_from(receipt_date(received_at, tz))


def timing(
    deadline: Deadline,
    *,
    extended: bool,
    answered_on: date | None,
    today: date,
    due_soon_days: int = 7,
) -> RequestTiming:
    """Where a request stands against its applicable deadline on ``today``.

    Answered on or before the due date: "answered", after it: "answered_late". Unanswered:
    "overdue" once today is past the due date, "due_soon" within ``due_soon_days`` of it (the
    due date itself included), else "open".
    """
    if due_soon_days < 0:
        raise ValueError(f"due_soon_days must be >= 0, got {due_soon_days}")
    due = deadline.due(extended=extended)
    if answered_on is not None:
        return "answered" if answered_on <= due else "answered_late"
    if today > due:
        return "overdue"
    if (due - today).days <= due_soon_days:
        return "due_soon"
    return "open"


def can_extend(deadline: Deadline, on: date) -> bool:
    """Whether an extension told to the person on ``on`` is in time: within the first month
    (Art. 12(3)), that is from receipt up to and including the original due date."""
    return deadline.received_on <= on <= deadline.due_on
