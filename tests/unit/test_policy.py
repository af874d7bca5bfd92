"""The append policy, decided purely: suppression, request lifecycle and item-by-item effects
(no Kafka, no PostgreSQL: what the ledger committed comes in as an AddressBook)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from events.catalog import SUBMISSION_ADAPTER, AnySubmission
from events.consent import SUPPRESSION_SOURCE
from events.register import load_register
from services.intake.policy import Decision, KnownRequest, KnownRequests, LedgerPolicy
from services.privacy.suppression import AddressBook, is_explicit_consent, load
from tests.samples import REQUEST_ID, T0, given_json, valid_json

POLICY = LedgerPolicy(load_register())
LI = {"notice_version": "2022-02-22", "language": "fi", "method": "crm_import",
      "legal_basis": "legitimate_interest"}  # fmt: skip
A = b"key-of-a"


def sub(body: dict[str, Any]) -> AnySubmission:
    return SUBMISSION_ADAPTER.validate_python(body)


def decide(
    bodies: list[dict[str, Any]],
    book: AddressBook | None = None,
    keys: dict[int, bytes] | None = None,
) -> Decision:
    submissions = [sub(b) for b in bodies]
    found = keys if keys is not None else {
        i: A for i, s in enumerate(submissions) if s.personal.email is not None
    }  # fmt: skip
    minted = {key: "sub-new" for key in found.values()}
    return POLICY.decide(submissions, found, book or AddressBook(), KnownRequests([]), minted)


def held_by_x(suppressed: bool = False) -> AddressBook:
    return load([(A, "x", "objected" if suppressed else None)], [(A, "x")])


def import_of_a(subject: str) -> dict[str, Any]:
    return given_json(subject, data=LI, personal={"email": "a@example.fi"})


def test_an_objection_refuses_a_later_import_of_its_address_in_the_same_batch() -> None:
    decision = decide([valid_json("objection.received", "x"), import_of_a("y")], held_by_x())
    assert [(p.item, p.field) for p in decision.problems] == [(1, "personal.email")]
    assert decision.spans[1] == range(0)


def test_an_objection_after_an_import_objects_for_the_other_holder_too() -> None:
    decision = decide([import_of_a("y"), valid_json("objection.received", "x")], held_by_x())
    assert decision.problems == []
    derived = [d for d in decision.drafts if d.submission.source == SUPPRESSION_SOURCE]
    assert [(d.submission.subject_id, d.submission.type) for d in derived] == [
        ("y", "objection.received")
    ]
    objection_index = decision.spans[1].start
    assert derived[0].cause == objection_index
    assert (
        derived[0].submission.occurred_at == decision.drafts[objection_index].submission.occurred_at
    )


def test_an_erasure_objects_for_every_purpose_of_the_register() -> None:
    book = load([(A, "x", None)], [(A, "x"), (A, "y")])
    decision = decide([valid_json("subject.erased", "x")], book, keys={})
    derived = {
        getattr(d.submission, "purpose", None)
        for d in decision.drafts
        if d.submission.source == SUPPRESSION_SOURCE
    }
    assert derived == {p.id for p in load_register().purposes}
    assert book.suppressed == {A: "erased"}


def test_a_suppressed_address_attaches_to_a_new_subject_only_by_explicit_consent() -> None:
    requested = valid_json("consent.requested", "n", personal={"email": "a@example.fi"})
    rectified = valid_json("subject.rectified", "n", personal={"email": "a@example.fi"})
    for body in (import_of_a("n"), requested, rectified):
        assert decide([body], held_by_x(suppressed=True)).problems, body["type"]
    explicit = given_json("n", personal={"email": "a@example.fi"})
    assert decide([explicit], held_by_x(suppressed=True)).problems == []
    assert decide([import_of_a("x")], held_by_x(suppressed=True)).problems == [], "a holder"


def test_named_by_address_alone_a_submission_is_filed_under_the_address_owner() -> None:
    body = {k: v for k, v in import_of_a("ignored").items() if k != "subject_id"}
    decision = decide([body], held_by_x(suppressed=True))
    assert decision.problems == []
    assert decision.drafts[0].submission.subject_id == "x"


def test_a_refused_item_changes_nothing_for_the_items_after_it() -> None:
    """A request whose id is taken already is refused, so the step after it names no known
    request of its subject; the same pair for a fresh id is accepted."""
    pair = [valid_json("request.received", "q"), valid_json("request.identity_verified", "q")]
    taken = KnownRequests([KnownRequest(UUID(REQUEST_ID), "other", T0, answered=False)])
    refused = POLICY.decide([sub(b) for b in pair], {}, AddressBook(), taken, {})
    assert [(p.item, p.field) for p in refused.problems] == [
        (0, "data.request_id"),
        (1, "data.request_id"),
    ]
    assert (
        decide(
            [valid_json("request.received", "q"), valid_json("request.identity_verified", "q")],
            keys={},
        ).problems
        == []
    )


def test_one_extension_and_no_step_before_the_receipt() -> None:
    received = valid_json("request.received", "q", occurred_at="2024-03-04T10:00:00Z")
    extended = valid_json("request.extended", "q", occurred_at="2024-03-05T10:00:00Z")
    early = valid_json("request.fulfilled", "q", occurred_at="2024-03-03T10:00:00Z")
    decision = decide([received, extended, extended, early], keys={})
    assert [(p.item, p.field) for p in decision.problems] == [
        (2, "data.request_id"),
        (3, "occurred_at"),
    ]


def step(kind: str, subject: str) -> dict[str, Any]:
    if kind == "import":
        return import_of_a(subject)
    if kind == "objection":
        return valid_json("objection.received", subject)
    if kind == "rectify":
        return valid_json("subject.rectified", subject, personal={"email": "a@example.fi"})
    return given_json(subject, personal={"email": "a@example.fi"})  # explicit consent


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["import", "objection", "rectify", "explicit"]),
            st.sampled_from(["x", "y", "z"]),
        ),
        max_size=12,
    )
)
def test_an_objected_address_is_never_attached_afterwards_without_explicit_consent(
    steps: list[tuple[str, str]],
) -> None:
    """Whatever the interleaving within a batch: once a holder of the address objects, every
    other holder gets an objection, and a newcomer attaches it only by explicit consent."""
    submissions = [sub(step(kind, subject)) for kind, subject in steps]
    keys = {i: A for i, s in enumerate(submissions) if s.personal.email is not None}
    decision = POLICY.decide(submissions, keys, AddressBook(), KnownRequests([]), {A: "sub-a"})
    holders: set[str] = set()
    owed: set[str] = set()  # holders at a suppression still waiting for their objection
    suppressed = False
    for draft in decision.drafts:
        s = draft.submission
        assert s.subject_id is not None
        if s.type == "objection.received":
            owed.discard(s.subject_id)
            if s.source != SUPPRESSION_SOURCE and s.subject_id in holders:
                suppressed = True
                owed |= holders - {s.subject_id}
        if s.personal.email is not None:
            if suppressed and s.subject_id not in holders:
                assert is_explicit_consent(s), s.type
            holders.add(s.subject_id)
    assert not owed, f"holders without an objection: {owed}"
