"""The materialized ledger: replacement, erasure, retractions, no raw values.

Every test runs against both stores, in memory and on disk: they must behave alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import closing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.fingerprint import Fingerprinter
from enforcer.ledger.disk import DiskLedgerState, MiB
from enforcer.ledger.model import GrantedIdentifier, SubjectUpdate
from enforcer.ledger.slots import subject_digest
from enforcer.ledger.state import (
    Grant,
    LedgerState,
    LedgerStore,
    Retraction,
    RetractionReason,
    Undo,
    grants_of,
)
from enforcer.ledger.store import apply_record

from ..conftest import KEY

FP = Fingerprinter(KEY)
ADS, MFA = "marketing.advertising", "security.mfa"
T0, T1 = "2019-10-08T12:00:00Z", "2019-10-09T12:00:00Z"
WITHDRAWN, ERASED = RetractionReason.PURPOSE_WITHDRAWN, RetractionReason.SUBJECT_ERASED


@pytest.fixture(scope="module", params=["memory", "disk"])
def new_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], LedgerStore]:
    """Makes an empty store of one kind (module-scoped: hypothesis examples share it,
    each making its own store)."""

    def make() -> LedgerStore:
        if request.param == "memory":
            return LedgerState()
        return DiskLedgerState(
            tmp_path_factory.mktemp("ledger"), cache_bytes=MiB, write_buffer_bytes=MiB
        )

    return make


@pytest.fixture
def state(new_store: Callable[[], LedgerStore]) -> Iterator[LedgerStore]:
    """An empty store, closed after the test."""
    with closing(new_store()) as store:
        yield store


def passes(_type: str, purposes: tuple[str, ...]) -> bool:
    """The default policy's rule: an identifier flows iff a purpose is advertising."""
    return any(p == ADS or p.startswith(ADS + ".") for p in purposes)


def grant(kind: str, value: str, *purposes: str) -> Grant:
    return Grant(kind, FP(kind, value), tuple(sorted(set(purposes))))


def test_a_known_identifier_has_its_purposes_and_others_are_unknown(state: LedgerStore) -> None:
    """Lookup is by subject, type and fingerprint; any other combination is unknown."""
    state.replace("acct-1", T0, [grant("phone", "+14155550100", MFA), grant("email", "a@x.io")])
    assert state.purposes("acct-1", "phone", FP("phone", "+1 (415) 555-0100")) == (MFA,)
    assert state.purposes("acct-1", "email", FP("email", " A@X.io")) == ()
    assert state.purposes("acct-2", "phone", FP("phone", "+14155550100")) is None
    assert state.purposes("acct-1", "device_id", FP("phone", "+14155550100")) is None
    assert state.purposes("acct-1", "phone", FP("phone", "+14155550199")) is None
    assert (len(state), state.subjects) == (2, 1)


def test_a_subject_read_once_answers_for_each_of_its_identifiers(state: LedgerStore) -> None:
    """The lookup an event makes (one read of its subject) answers as the lookup of
    each identifier does; a subject the ledger does not know has no grants at all, and
    an erased one grants every identifier nothing."""
    state.replace("acct-1", T0, [grant("phone", "+14155550100", MFA), grant("email", "a@x.io")])
    state.erase("acct-3", T0)
    assert state.subject("acct-2") is None
    grants = state.subject("acct-1")
    assert grants is not None
    erased = state.subject("acct-3")
    assert erased is not None
    for kind, value in [
        ("phone", "+14155550100"),
        ("email", "a@x.io"),
        ("device_id", "+14155550100"),
        ("phone", "+14155550199"),
    ]:
        mac = FP.mac(kind, value)
        assert grants(kind, mac) == state.purposes_of_mac("acct-1", kind, mac)
        assert erased(kind, mac) == () == state.purposes_of_mac("acct-3", kind, mac)
    assert grants("phone", FP.mac("phone", "+14155550100")) == (MFA,)
    assert grants("device_id", FP.mac("phone", "+14155550100")) is None


@given(st.text())
def test_a_subject_is_kept_by_the_blake2b_digest_of_its_id(subject_id: str) -> None:
    """The digest made from a copied hash state is BLAKE2b-128 of the id's UTF-8, lone
    surrogates kept (the key both stores are laid out by)."""
    expected = hashlib.blake2b(subject_id.encode("utf-8", "surrogatepass"), digest_size=16)
    assert subject_digest(subject_id) == expected.digest()


def test_an_update_replaces_the_whole_previous_state(state: LedgerStore) -> None:
    """Identifiers not listed any more are forgotten, and counted out."""
    state.replace("acct-1", T0, [grant("phone", "+14155550100", ADS), grant("email", "a@x.io")])
    state.replace("acct-1", T1, [grant("email", "a@x.io", ADS)])
    assert state.purposes("acct-1", "phone", FP("phone", "+14155550100")) is None
    assert state.purposes("acct-1", "email", FP("email", "a@x.io")) == (ADS,)
    state.replace("acct-1", T1, [])
    assert (len(state), state.subjects) == (0, 0)


def test_one_identifier_listed_twice_gets_the_union_of_its_purposes(state: LedgerStore) -> None:
    """Two spellings of one number are one identifier."""
    state.replace(
        "acct-1", T0, [grant("phone", "+14155550100", MFA), grant("phone", "415 555 0100", ADS)]
    )
    assert state.purposes("acct-1", "phone", FP("phone", "+14155550100")) == (ADS, MFA)
    assert len(state) == 1


def test_retractions_name_withdrawn_and_erased_identifiers(state: LedgerStore) -> None:
    """Withdrawn advertising consent and an erased account are retracted, with the
    fingerprint and the ledger time, never the value."""
    phone, email = grant("phone", "+14155550100", ADS, MFA), grant("email", "a@x.io", ADS)
    assert state.replace("acct-1", T0, [phone, email], passes) == []
    withdrawn = state.replace("acct-1", T1, [phone._replace(purposes=(MFA,)), email], passes)
    assert withdrawn == [Retraction("acct-1", "phone", phone.fingerprint, WITHDRAWN, T1)]
    erased = state.erase("acct-1", "2019-10-10T00:00:00Z", passes)
    assert erased == [
        Retraction("acct-1", "email", email.fingerprint, ERASED, "2019-10-10T00:00:00Z")
    ]
    # Erased: known to the ledger with no purpose at all (not unknown, which under
    # ``fallback`` would let the event's own tags decide again).
    assert state.purposes("acct-1", "email", email.fingerprint) == ()
    assert (len(state), state.subjects, state.erased) == (0, 0, 1)
    state.replace("acct-1", T1, [email])
    assert state.purposes("acct-1", "email", email.fingerprint) == (ADS,)
    assert (len(state), state.subjects, state.erased) == (1, 1, 0)


def test_without_a_judge_apply_is_silent(state: LedgerStore) -> None:
    """A restore applies history without retracting it again."""
    state.replace("acct-1", T0, [grant("email", "a@x.io", ADS)])
    assert state.replace("acct-1", T1, []) == []
    state.replace("acct-1", T0, [grant("email", "a@x.io", ADS)])
    assert state.erase("acct-1", T1) == []


def test_grants_of_fingerprints_raw_identifiers() -> None:
    """Raw values stop at :func:`grants_of`."""
    assert grants_of([("phone", "+14155550100", (MFA,))], FP) == [
        grant("phone", "+14155550100", MFA)
    ]


# Values are numbered so no value can be mistaken for a type or a purpose tag.
values = st.integers(0, 5).map(lambda n: f"+1415555{n:04d}")
purpose_sets = st.sets(st.sampled_from([ADS, f"{ADS}.sms", MFA, "analytics"]), max_size=2)
subject_grants = st.lists(
    st.tuples(st.sampled_from(["phone", "email"]), values, purpose_sets), max_size=4
)
operations = st.lists(
    st.tuples(st.sampled_from(["s-1", "s-2"]), st.none() | subject_grants), min_size=1
)


def passing(state: LedgerStore, subject: str) -> set[tuple[str, str]]:
    """(type, fingerprint) of every identifier of ``subject`` that would pass now."""
    out = set()
    for kind in ("phone", "email"):
        for n in range(6):
            fingerprint = FP(kind, f"+1415555{n:04d}")
            purposes = state.purposes(subject, kind, fingerprint)
            if purposes is not None and passes(kind, purposes):
                out.add((kind, fingerprint))
    return out


# No deadline: an example on disk opens and removes a RocksDB database, whose time
# depends on the file system and the machine's load.
@settings(max_examples=200, deadline=None)
@given(operations=operations)
def test_a_retraction_is_produced_exactly_when_a_verdict_turns_to_not_pass(
    new_store: Callable[[], LedgerStore],
    operations: list[tuple[str, list[tuple[str, str, set[str]]] | None]],
) -> None:
    """Over any updates and erasures: retracted = passed before, minus passes after."""
    with closing(new_store()) as state:
        check_retractions(state, operations)


def check_retractions(
    state: LedgerStore, operations: list[tuple[str, list[tuple[str, str, set[str]]] | None]]
) -> None:
    for subject, update in operations:
        before = passing(state, subject)
        if update is None:
            retractions = state.erase(subject, T1, passes)
            reason = ERASED
        else:
            triples = [(kind, value, tuple(sorted(p))) for kind, value, p in update]
            retractions = state.replace(subject, T1, grants_of(triples, FP), passes)
            reason = WITHDRAWN
        after = passing(state, subject)
        assert {(r.identifier_type, r.fingerprint) for r in retractions} == before - after
        assert len(retractions) == len(before - after)
        assert all(r.reason is reason and r.subject_id == subject for r in retractions)


@settings(deadline=None)
@given(operations=operations)
def test_the_state_never_holds_a_raw_value_and_erasure_leaves_nothing(
    new_store: Callable[[], LedgerStore],
    operations: list[tuple[str, list[tuple[str, str, set[str]]] | None]],
) -> None:
    """No stored key, blob or table holds an input value; erasing every subject empties it."""
    with closing(new_store()) as state:
        check_no_raw_value(state, operations)


def check_no_raw_value(
    state: LedgerStore, operations: list[tuple[str, list[tuple[str, str, set[str]]] | None]]
) -> None:
    seen: set[str] = set()
    for subject, update in operations:
        if update is None:
            state.erase(subject, T1)
            continue
        triples = [(kind, value, tuple(sorted(p))) for kind, value, p in update]
        seen.update(value for _, value, _ in triples)
        state.replace(subject, T1, grants_of(triples, FP))
        assert len(state) == len({(k, FP(k, v)) for k, v, _ in triples}) + len(
            known_identifiers(state, "s-2" if subject == "s-1" else "s-1")
        )
    for value in seen:
        assert not state.holds_text(value)
        assert not state.holds_text(value.removeprefix("+"))
    for subject in ("s-1", "s-2"):
        state.erase(subject, T1)
    assert (len(state), state.subjects) == (0, 0)


def known_identifiers(state: LedgerStore, subject: str) -> set[tuple[str, str]]:
    """(type, fingerprint) of every identifier of ``subject`` the ledger lists (an
    erased subject lists none: every identifier of it has no purpose)."""
    if state.purposes(subject, "email", FP("email", "never-listed@example.org")) == ():
        return set()
    return {
        (kind, FP(kind, f"+1415555{n:04d}"))
        for kind in ("phone", "email")
        for n in range(6)
        if state.purposes(subject, kind, FP(kind, f"+1415555{n:04d}")) is not None
    }


def test_rollback_puts_back_what_a_transaction_changed(state: LedgerStore) -> None:
    """An aborted transaction's ledger records are read again: the state must be as
    it was before them, or re-applying them would find nothing to retract."""
    fingerprinter = Fingerprinter(b"k" * 32)
    ad = ("marketing.advertising",)
    state.replace(
        "s1", "2026-01-01T00:00:00Z", grants_of([("email", "a@x.org", ad)], fingerprinter)
    )
    state.replace(
        "s2", "2026-01-01T00:00:00Z", grants_of([("email", "b@x.org", ad)], fingerprinter)
    )
    before = (len(state), state.subjects)
    undo: Undo = {}
    state.replace("s1", "2026-01-02T00:00:00Z", [], undo=undo)
    state.replace(
        "s1",
        "2026-01-03T00:00:00Z",
        grants_of([("phone", "+14155550100", ad)], fingerprinter),
        undo=undo,
    )
    state.erase("s2", "2026-01-02T00:00:00Z", undo=undo)
    state.replace(
        "s3",
        "2026-01-02T00:00:00Z",
        grants_of([("email", "c@x.org", ad)], fingerprinter),
        undo=undo,
    )
    assert state.purposes("s3", "email", fingerprinter("email", "c@x.org")) == ad
    assert state.purposes("s2", "email", fingerprinter("email", "b@x.org")) == ()  # erased
    state.rollback(undo)
    assert (len(state), state.subjects) == before
    assert undo == {}
    assert state.purposes("s1", "email", fingerprinter("email", "a@x.org")) == ad
    assert state.purposes("s1", "phone", fingerprinter("phone", "+14155550100")) is None
    assert state.purposes("s2", "email", fingerprinter("email", "b@x.org")) == ad
    assert state.purposes("s3", "email", fingerprinter("email", "c@x.org")) is None
    passes = lambda _type, purposes: "marketing.advertising" in purposes  # noqa: E731
    retracted = state.replace("s1", "2026-01-02T00:00:00Z", [], passes, undo)
    assert [r.reason for r in retracted] == ["purpose-withdrawn"]


def test_a_record_applied_from_its_raw_values_fingerprints_each_once(
    state: LedgerStore,
) -> None:
    """:func:`apply_record` (restore and updates) makes each MAC once, straight from the
    raw value, and gives the state :meth:`replace` gives: duplicates merged, purpose
    sets sorted and de-duplicated whatever order they come in."""
    record = SubjectUpdate(
        "acct-1",
        T0,
        (
            GrantedIdentifier("phone", "+1 (415) 555-0100", (MFA,)),
            GrantedIdentifier("phone", "415 555 0100", (ADS,)),
            GrantedIdentifier("email", "A@x.io", (MFA, ADS, ADS)),
        ),
    )
    fingerprinter = Fingerprinter(KEY)
    assert apply_record(state, record, fingerprinter, "") == []
    assert state.purposes("acct-1", "phone", FP("phone", "+14155550100")) == (ADS, MFA)
    assert state.purposes("acct-1", "email", FP("email", "a@x.io")) == (ADS, MFA)
    assert (len(state), state.subjects) == (2, 1)


def test_a_withheld_subject_grants_nothing_until_its_next_value(state: LedgerStore) -> None:
    """A subject whose latest value was refused as ambiguous (docs/ledger.md): known with
    no purpose, what passed retracted as withdrawn, undone by a rollback, and replaced by
    the next value that reads one way."""
    email = grant("email", "a@x.io", ADS)
    state.replace("acct-1", T0, [email])
    assert not state.grants_nothing("acct-1") and not state.grants_nothing("acct-2")
    undo: Undo = {}
    withheld = state.withhold("acct-1", T1, passes, undo)
    assert withheld == [Retraction("acct-1", "email", email.fingerprint, WITHDRAWN, T1)]
    assert state.purposes("acct-1", "email", email.fingerprint) == ()
    assert state.grants_nothing("acct-1")
    state.rollback(undo)
    assert state.purposes("acct-1", "email", email.fingerprint) == (ADS,)
    assert state.withhold("acct-1", T1) == []  # silent, as in a restore
    state.replace("acct-1", T1, [email])
    assert state.purposes("acct-1", "email", email.fingerprint) == (ADS,)
    assert not state.grants_nothing("acct-1")


def test_purpose_sets_no_identifier_refers_to_are_forgotten_and_their_numbers_reused(
    state: LedgerStore,
) -> None:
    """Grants that keep changing must not grow the table of purpose sets for ever: a set
    no identifier refers to any more goes at the next forget (after a commit), and a
    new set takes its number; the identifiers still granted keep their purposes."""
    state.replace("s1", T0, [grant("email", "a@x.io", ADS)])
    for day in range(5):
        state.replace("s2", T1, [grant("email", "b@x.io", f"consent.day{day}")])
        state.forget_unused_purposes()
        assert state.purpose_sets == 2  # s1's and s2's latest
    state.erase("s2", T1)
    assert state.forget_unused_purposes() == 1
    assert state.purpose_sets == 1
    assert state.purposes("s1", "email", FP("email", "a@x.io")) == (ADS,)
    assert state.purposes("s2", "email", FP("email", "b@x.io")) == ()


def test_a_rollback_pending_keeps_the_purpose_sets_it_may_bring_back(state: LedgerStore) -> None:
    """A set that only an undo log refers to is not forgotten before the rollback: the
    subject it brings back is granted what it was."""
    state.replace("s1", T0, [grant("email", "a@x.io", ADS)])
    undo: Undo = {}
    state.replace("s1", T1, [grant("email", "a@x.io", MFA)], undo=undo)
    state.rollback(undo)
    state.forget_unused_purposes()
    assert state.purposes("s1", "email", FP("email", "a@x.io")) == (ADS,)
    assert state.purpose_sets == 1
    state.replace("s2", T1, [grant("email", "c@x.io", "analytics")])
    assert state.purposes("s1", "email", FP("email", "a@x.io")) == (ADS,)


_SUBJECTS = ["s1", "s2", "s3"]
_TAGS = [ADS, MFA, "analytics", "consent.a", "consent.b"]
_change = st.tuples(
    st.sampled_from(["replace", "erase"]),
    st.sampled_from(_SUBJECTS),
    st.lists(
        st.tuples(st.sampled_from(["a@x.io", "b@x.io"]), st.sets(st.sampled_from(_TAGS))),
        max_size=3,
    ),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.lists(_change, max_size=4), st.booleans()), max_size=8))
def test_forgetting_unused_purpose_sets_never_changes_a_grant(
    new_store: Callable[[], LedgerStore],
    transactions: list[tuple[list[tuple[str, str, list[tuple[str, set[str]]]]], bool]],
) -> None:
    """Over random transactions, committed (then forgotten) or rolled back: every
    lookup answers as a model of the grants does, and the table holds exactly the
    purpose sets some identifier is granted."""
    model: dict[str, dict[str, tuple[str, ...]] | None] = {}
    with closing(new_store()) as state:
        for changes, commit in transactions:
            undo: Undo = {}
            staged = dict(model)
            for kind, subject, grants in changes:
                if kind == "erase":
                    state.erase(subject, T1, undo=undo)
                    staged[subject] = None
                    continue
                granted: dict[str, set[str]] = {}
                for value, tags in grants:
                    granted.setdefault(value, set()).update(tags)
                state.replace(
                    subject, T1, [grant("email", v, *tags) for v, tags in grants], undo=undo
                )
                staged[subject] = {v: tuple(sorted(t)) for v, t in granted.items()}
            if commit:
                model = staged
            else:
                state.rollback(undo)
            state.forget_unused_purposes()
            held: set[tuple[str, ...]] = set()
            for subject in _SUBJECTS:
                known = model.get(subject, "absent")
                for value in ["a@x.io", "b@x.io"]:
                    found = state.purposes(subject, "email", FP("email", value))
                    if known == "absent":
                        assert found is None
                    elif known is None:
                        assert found == ()
                    else:
                        assert isinstance(known, dict)
                        assert found == known.get(value)
                if isinstance(known, dict):
                    held.update(known.values())
            assert state.purpose_sets == len(held)
