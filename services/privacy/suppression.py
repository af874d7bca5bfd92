"""The suppression rule, decided at append time from what the ledger has committed (pure).

An address whose person objected (Art. 21) or was erased (Art. 17) is *suppressed*. From then
on:

- no submission of any type may attach that address to a subject that did not hold it already,
  unless it is an explicit consent from the address (``consent.given`` with legal basis
  ``consent``): not a registration under legitimate interest, not a rectification, not a double
  opt-in request filed under another subject id (naming the person by the address alone files
  it under its first subject, whose own history then decides);
- every *other* subject that holds the address when it is suppressed gets an
  ``objection.received`` of its own, caused by the suppressing event and dated like it, for the
  objected purpose (every purpose of the register for an erasure), so that each subject's own
  fold keeps it ineligible and replay needs nothing but the log.

Only a later explicit consent lifts a suppression, and only for the subject that gives it (its
fold decides, as for any objection). Addresses are known here only by their keyed hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from events.catalog import AnySubmission
from events.consent import ConsentGivenIn, ObjectionReceivedIn
from events.subject import ErasedIn

Why = Literal["objected", "erased"]


def is_explicit_consent(submission: AnySubmission) -> bool:
    """A consent the person gave themselves, which alone may attach a suppressed address."""
    return isinstance(submission, ConsentGivenIn) and submission.data.legal_basis == "consent"


def why(submission: AnySubmission) -> Why | None:
    """Whether, and how, a submission suppresses its subject's addresses."""
    if isinstance(submission, ErasedIn):
        return "erased"
    return "objected" if isinstance(submission, ObjectionReceivedIn) else None


@dataclass(frozen=True, slots=True)
class Mark:
    """An address newly suppressed by the draft at ``cause`` (an index into the batch's drafts)."""

    key: bytes
    why: Why
    cause: int


@dataclass(slots=True)
class AddressBook:
    """What the ledger has committed about the addresses a batch touches, and what the batch's
    accepted items add to it as they are decided one by one."""

    owners: dict[bytes, str] = field(default_factory=dict)  # each address's first subject
    suppressed: dict[bytes, Why] = field(default_factory=dict)
    holders: dict[bytes, set[str]] = field(default_factory=dict)
    new_owners: dict[bytes, str] = field(default_factory=dict)
    new_holders: set[tuple[bytes, str]] = field(default_factory=set)
    marks: list[Mark] = field(default_factory=list)

    def keys_of(self, subject_id: str) -> set[bytes]:
        return {key for key, held in self.holders.items() if subject_id in held}

    def refusal(self, key: bytes, subject_id: str, submission: AnySubmission) -> str | None:
        """Why attaching a suppressed address to this subject is refused, if it is."""
        if key not in self.suppressed or subject_id in self.holders.get(key, ()):
            return None
        if is_explicit_consent(submission):
            return None
        return (
            f"this address is on the suppression list (its person {self.suppressed[key]}); "
            "only an explicit consent (consent.given with legal_basis consent) can attach it "
            "to another subject id; to file the submission under the address's own person, "
            "leave subject_id out"
        )

    def attach(self, key: bytes, subject_id: str) -> None:
        if key not in self.owners:
            self.owners[key] = self.new_owners[key] = subject_id
        held = self.holders.setdefault(key, set())
        if subject_id not in held:
            held.add(subject_id)
            self.new_holders.add((key, subject_id))

    def suppress(self, subject_id: str, reason: Why, cause: int) -> set[str]:
        """Suppress every address the subject holds; returns the other subjects holding them."""
        others: set[str] = set()
        for key in sorted(self.keys_of(subject_id)):
            if key not in self.suppressed:
                self.suppressed[key] = reason
                self.marks.append(Mark(key, reason, cause))
            others |= self.holders[key] - {subject_id}
        return others


def load(
    owners: Iterable[tuple[bytes, str, Why | None]], holders: Iterable[tuple[bytes, str]]
) -> AddressBook:
    """A book from the identity index's rows (key, first subject, suppression) and the
    address holders' rows (key, subject)."""
    book = AddressBook()
    for key, subject_id, suppression in owners:
        book.owners[key] = subject_id
        if suppression is not None:
            book.suppressed[key] = suppression
    for key, subject_id in holders:
        book.holders.setdefault(key, set()).add(subject_id)
    return book


class BookRows(Protocol):
    """A backend's rows of the identity index, read inside a batch's transaction."""

    async def lock(self, keys: set[bytes], subjects: set[str]) -> None:
        """Hold these addresses and subjects until the transaction ends (again: a no-op)."""
        ...

    async def owners(self, keys: set[bytes]) -> list[tuple[bytes, str, Why | None]]:
        """(key, first subject, suppression) of each known address among ``keys``."""
        ...

    async def holders(self, keys: set[bytes], subjects: set[str]) -> list[tuple[bytes, str]]:
        """(key, subject) of every holder of ``keys`` and of every address ``subjects`` hold."""
        ...


async def read_book(
    rows: BookRows, submissions: Sequence[AnySubmission], keys: Mapping[int, bytes]
) -> AddressBook:
    """Lock and read what the ledger committed about a batch's addresses, and about every
    address of each subject that the batch's objections and erasures suppress (which may name
    further addresses, and so on). One algorithm for every backend: they differ only in rows."""
    touching = [i for i, s in enumerate(submissions) if i in keys or why(s) is not None]
    if not touching:  # attaches and suppresses nothing: no lock, no read
        return AddressBook()
    named = {s for i in touching if (s := submissions[i].subject_id) is not None}
    wanted = set(keys.values())
    while True:
        await rows.lock(wanted, named)
        owners = await rows.owners(wanted)
        first = {key: subject for key, subject, _ in owners}
        suppressors = {
            s.subject_id or first.get(keys.get(i, b""))
            for i, s in enumerate(submissions)
            if why(s) is not None
        }
        holders = await rows.holders(wanted, {s for s in suppressors if s})
        more = {key for key, _ in holders} - wanted
        if not more:
            return load(owners, holders)
        wanted |= more
