"""Study-scoped linkage pseudonyms (``federation/crypto/linkage.py``), read as a transcript.

The register's node draws a per-study key and makes the sorted list of its cohort's pseudonyms; the
list (and the key, inside an envelope) reaches the other nodes. A node holding the key finds its own
residents on the list. A node without the key, or with another study's key, finds nobody. The list's
bytes contain no identity code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pytest

from federation.crypto.linkage import (
    PSEUDONYM_BYTES, cohort_from_bytes, cohort_to_bytes, digest, new_linkage_key, positions, pseudonyms,
)

STUDY = "study-2025-017"
SEED = 20_250_611


def _identity_codes(count: int, seed: int) -> list[str]:
    """Distinct synthetic Finnish-style personal identity codes (DDMMYY-NNNC)."""
    rng = np.random.default_rng(seed)
    codes: set[str] = set()
    while len(codes) < count:
        day, month, year, number = rng.integers(1, 29), rng.integers(1, 13), rng.integers(0, 100), rng.integers(2, 900)
        check = "0123456789ABCDEFHJKLMNPRSTUVWXY"[int(rng.integers(31))]
        codes.add(f"{day:02d}{month:02d}{year:02d}-{number:03d}{check}")
    return sorted(codes)


@dataclass(frozen=True)
class _Linkage:
    key: bytes
    #: the register's cohort, in the order of the sorted pseudonym list
    cohort_codes: list[str]
    #: the list as it travels (bytes) and as a node reads it
    wire: bytes
    #: a node's residents: 300 cohort members and 200 residents outside the cohort
    members: list[str]
    outsiders: list[str]


@pytest.fixture(scope="module")
def linkage() -> _Linkage:
    codes = _identity_codes(1200, SEED)
    cohort, outsiders = codes[:1000], codes[1000:]
    key = new_linkage_key()
    own = pseudonyms(key, STUDY, cohort)
    order = np.argsort(own)
    members = [cohort[i] for i in np.random.default_rng(SEED + 1).choice(len(cohort), 300, replace=False)]
    return _Linkage(key, [cohort[i] for i in order], cohort_to_bytes(own[order]), members, outsiders)


def test_pseudonyms_are_deterministic_per_key_and_study(linkage: _Linkage) -> None:
    # Execute: the register and a node compute the pseudonyms of the same codes independently
    register = pseudonyms(linkage.key, STUDY, linkage.members)
    node = pseudonyms(bytes(linkage.key), STUDY, list(linkage.members))
    # Assert
    assert register.dtype == np.dtype(f"S{PSEUDONYM_BYTES}") and len(register) == len(linkage.members)
    assert register.tobytes() == node.tobytes()
    assert len(np.unique(register)) == len(linkage.members)


@pytest.mark.parametrize("key_changed, study_id", [(True, STUDY), (False, "study-2025-018")],
                         ids=["another-key", "another-study"])
def test_pseudonyms_differ_across_keys_and_study_ids(linkage: _Linkage, key_changed: bool, study_id: str) -> None:
    # Prepare
    key = new_linkage_key() if key_changed else linkage.key
    # Execute
    these = pseudonyms(linkage.key, STUDY, linkage.members)
    those = pseudonyms(key, study_id, linkage.members)
    # Assert: not one pseudonym in common, not even for the same code
    assert len(np.intersect1d(these, those)) == 0
    assert not np.any(these == those)


def test_a_node_with_the_key_finds_its_residents_on_the_list(linkage: _Linkage) -> None:
    # Prepare: the node's residents, members and outsiders mixed
    residents = linkage.members + linkage.outsiders
    # Execute
    found = positions(cohort_from_bytes(linkage.wire), pseudonyms(linkage.key, STUDY, residents))
    # Assert: each member sits where the register put it; each outsider is -1
    assert found.dtype == np.int64
    assert [linkage.cohort_codes[i] for i in found[:len(linkage.members)]] == linkage.members
    assert np.all(found[len(linkage.members):] == -1)


@pytest.mark.parametrize("key_changed, study_id", [(True, STUDY), (False, "study-2025-018")],
                         ids=["without-the-key", "another-studys-pseudonyms"])
def test_a_node_without_the_key_finds_nobody(linkage: _Linkage, key_changed: bool, study_id: str) -> None:
    # Prepare: the node's own key (it never received the register's), or the right key under another study
    key = new_linkage_key() if key_changed else linkage.key
    # Execute
    found = positions(cohort_from_bytes(linkage.wire), pseudonyms(key, study_id, linkage.members))
    # Assert
    assert np.all(found == -1)


def test_positions_on_an_empty_list_are_all_outside(linkage: _Linkage) -> None:
    # Execute
    found = positions(cohort_from_bytes(b""), pseudonyms(linkage.key, STUDY, linkage.members[:5]))
    # Assert
    assert found.tolist() == [-1] * 5


def test_pseudonyms_with_zero_bytes_keep_their_place() -> None:
    # Prepare: numpy's S16 drops trailing zero bytes when it hands out an element; the list must not care
    raw = [b"\x00" * 16, b"\x01" + b"\x00" * 15, b"\x01\x00\x02" + b"\x00" * 13,
           b"\x01\x00\x02" + b"\x00" * 12 + b"\x01", b"\xff" * 16]
    cohort = np.array(raw, dtype=f"S{PSEUDONYM_BYTES}")
    # Execute
    wire = cohort_to_bytes(cohort)
    found = positions(cohort_from_bytes(wire), cohort[::-1])
    # Assert
    assert wire == b"".join(raw)
    assert found.tolist() == [4, 3, 2, 1, 0]


def test_the_list_round_trips_through_bytes(linkage: _Linkage) -> None:
    # Execute
    cohort = cohort_from_bytes(linkage.wire)
    # Assert
    assert len(linkage.wire) == PSEUDONYM_BYTES * len(linkage.cohort_codes)
    assert cohort_to_bytes(cohort) == linkage.wire


@pytest.mark.parametrize("damage", ["unsorted", "duplicated", "ragged"])
def test_cohort_from_bytes_refuses_an_unsorted_duplicated_or_ragged_list(linkage: _Linkage, damage: str) -> None:
    # Prepare
    size = PSEUDONYM_BYTES
    entries = [linkage.wire[i:i + size] for i in range(0, len(linkage.wire), size)]
    wire = {"unsorted": b"".join(entries[1::-1] + entries[2:]),
            "duplicated": b"".join(entries[:1] + entries),
            "ragged": linkage.wire[:-1]}[damage]
    # Execute / Assert
    with pytest.raises(ValueError):
        cohort_from_bytes(wire)


def test_digests_differ_for_different_lists(linkage: _Linkage) -> None:
    # Prepare: the list, the list without one entry, and the same cohort under another key
    cohort = cohort_from_bytes(linkage.wire)
    other_key = np.sort(pseudonyms(new_linkage_key(), STUDY, linkage.cohort_codes))
    # Execute
    digests = [digest(cohort), digest(cohort[1:]), digest(other_key), digest(cohort_from_bytes(linkage.wire))]
    # Assert
    assert digests[0] == hashlib.sha256(linkage.wire).hexdigest() == digests[3]
    assert len(set(digests[:3])) == 3


def test_the_list_bytes_contain_no_identity_code(linkage: _Linkage) -> None:
    # Prepare: each code in clear, and its unkeyed hash (what a list without the key's HMAC would leak)
    codes = linkage.cohort_codes
    # Execute / Assert
    for code in codes:
        assert code.encode() not in linkage.wire
        assert code[:6].encode() not in linkage.wire
        assert hashlib.sha256(code.encode()).digest()[:PSEUDONYM_BYTES] not in linkage.wire


def test_new_linkage_keys_are_32_fresh_bytes() -> None:
    # Execute
    keys = {new_linkage_key() for _ in range(16)}
    # Assert
    assert len(keys) == 16 and all(len(key) == 32 for key in keys)
