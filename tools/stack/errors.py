"""The one exception type the stack raises for problems a person has to fix."""

from __future__ import annotations


class StackError(Exception):
    """A local stack could not be fetched, started or reached; the message says what to do.

    The CLI prints the message as is and exits with status 2, so it must be self-explanatory.
    """
