"""The keyed identity index: producers may name a person by e-mail address, yet no address is
stored in clear anywhere in it.

Every backend keys an address as HMAC-SHA-256(server secret, normalised address); the address
book (each address's first subject, its holders and the suppression list) is kept by the
admission's unit of work (:mod:`services.intake.postgres`, :mod:`services.intake.memory`), and
:mod:`services.privacy.suppression` holds the rule.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from events.catalog import AnySubmission


def normalise(email: str) -> str:
    """One spelling per mailbox: surrounding blanks removed, case folded (mail providers treat
    the local part case-insensitively in practice, and a miss here would defeat suppression)."""
    return email.strip().casefold()


class IdentityIndex:
    """Keys addresses with the server secret, so that the index never holds one in clear."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def key(self, email: str) -> bytes:
        return hmac.new(self._secret, normalise(email).encode(), hashlib.sha256).digest()

    def keys(self, submissions: Sequence[AnySubmission]) -> dict[int, bytes]:
        """Each submission's address key, by item, for the items that carry an address."""
        return {
            i: self.key(str(s.personal.email))
            for i, s in enumerate(submissions)
            if s.personal.email is not None
        }
