"""Progress lines for long runs: how far, how fast, and how long still; at most one a while."""

from __future__ import annotations

from collections.abc import Callable


def progress_line(
    label: str, done: int, total: int, unit: str, elapsed: float, detail: str = ""
) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = f"{(total - done) / rate:,.0f} s" if rate > 0 else "?"
    share = 100 * done / total if total else 100.0
    return (
        f"{label}: {done:,}/{total:,} {unit} ({share:.0f}%){detail}, "
        f"{rate:,.0f} {unit}/s, ETA {eta}"
    )


class ProgressPrinter:
    """Writes a :func:`progress_line` at most once per ``interval_s``, and always the last one."""

    def __init__(
        self, label: str, unit: str, write: Callable[[str], None], interval_s: float = 1.0
    ) -> None:
        self._label, self._unit, self._write = label, unit, write
        self._interval = interval_s
        self._last = -interval_s

    def report(self, done: int, total: int, elapsed: float, detail: str = "") -> None:
        if elapsed - self._last < self._interval and done < total:
            return
        self._last = elapsed
        self._write(progress_line(self._label, done, total, self._unit, elapsed, detail))
