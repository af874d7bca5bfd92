"""Progress lines of long runs (bench phases, replay): rate, ETA, and how often."""

from __future__ import annotations

from services.progress import ProgressPrinter, progress_line


def test_a_line_says_how_far_how_fast_and_how_long_still() -> None:
    line = progress_line("projection: folded", 1_250_000, 5_000_000, "events", 500.0)
    assert line == (
        "projection: folded: 1,250,000/5,000,000 events (25%), 2,500 events/s, ETA 1,500 s"
    )
    assert progress_line("x", 0, 10, "events", 0.0).endswith("0 events/s, ETA ?")
    assert ", 7 events folded," in progress_line(
        "replay", 1, 2, "records", 1.0, ", 7 events folded"
    )


def test_lines_come_at_most_once_an_interval_and_always_at_the_end() -> None:
    lines: list[str] = []
    printer = ProgressPrinter("phase", "events", lines.append, interval_s=10.0)
    for second, done in [(0.0, 0), (4.0, 40), (9.9, 99), (10.0, 100), (15.0, 150), (16.0, 200)]:
        printer.report(done, 200, second)
    assert [line.split(" events ")[0] for line in lines] == [
        "phase: 0/200",
        "phase: 100/200",
        "phase: 200/200",  # the last one, though less than 10 s after the one before
    ]
