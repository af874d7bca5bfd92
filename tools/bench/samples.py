"""Readings taken a few times a second, cut at any instant in between.

A measurement's window rarely starts or ends on a reading, so the value at its ends is taken on
the straight line between the readings around them.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar


class Timed(Protocol):
    @property
    def at(self) -> float: ...


_S = TypeVar("_S", bound=Timed)


def interpolated(samples: Sequence[_S], at: float, mix: Callable[[_S, _S, float], _S]) -> _S | None:
    """The reading at ``at``: a sample taken then, or ``mix(before, after, weight of after)``
    (None outside the samples). ``samples`` are in order of ``at``."""
    times = [s.at for s in samples]
    i = bisect.bisect_left(times, at)
    if i < len(samples) and times[i] == at:
        return samples[i]
    if i == 0 or i == len(samples):
        return None
    before, after = samples[i - 1], samples[i]
    return mix(before, after, (at - before.at) / (after.at - before.at))
