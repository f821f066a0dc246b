"""Announced keys and sealed envelopes (``federation/crypto/envelope.py``), read as transcripts.

Three enrolled nodes A, B and C take part in one study. Their identity keys (ECDSA P-384) reach each
other as the OpenSSH lines of the coordinator-signed spec. Each node announces a per-study X25519
key and accepts the others' announcements. Everything between the nodes passes through a relay,
which may read, drop, replay or rewrite bytes. The tests assert what each party receives, and that
every deviation ends in ``EnvelopeError``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from federation.crypto.envelope import (
    ENVELOPE_VERSION, Announcement, Envelope, EnvelopeError, StudyKeys, load_identity_public_key,
)

STUDY = "study-2025-017"
SPEC_SHA256 = hashlib.sha256(b"the coordinator-signed spec of study-2025-017").hexdigest()
A, B, C = "espoo/health_care", "espoo/social_services", "espoo/education"
ROLES = {A: "outcome", B: "factor", C: "factor"}
LABEL = "linkage-key"
PAYLOAD = b"linkage key and cohort list: " + bytes(range(32))


def _identity() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def _openssh(key: ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


@dataclass
class _Study:
    """The parties of one study after every node has announced its key and accepted the others'."""

    identities: dict[str, ec.EllipticCurvePrivateKey]
    #: what the signed spec lists: each dataset's identity key as an OpenSSH line
    participants: dict[str, str]
    keys: dict[str, StudyKeys]
    #: announcements as the relay carries them (bytes)
    announced: dict[str, bytes]

    def listed(self, dataset: str) -> ec.EllipticCurvePublicKey:
        return load_identity_public_key(self.participants[dataset])


def _start(study_id: str = STUDY, spec_sha256: str = SPEC_SHA256) -> _Study:
    identities = {dataset: _identity() for dataset in (A, B, C)}
    participants = {dataset: _openssh(key) for dataset, key in identities.items()}
    keys = {dataset: StudyKeys(study_id, spec_sha256, dataset, ROLES[dataset]) for dataset in identities}
    announced = {dataset: keys[dataset].announce(identities[dataset]).to_bytes() for dataset in identities}
    study = _Study(identities, participants, keys, announced)
    for receiver in keys.values():
        for dataset, data in announced.items():
            if dataset != receiver.dataset:
                receiver.accept(Announcement.from_bytes(data), study.listed(dataset), dataset)
    return study


@pytest.fixture
def study() -> _Study:
    return _start()


def _relayed(envelope: Envelope) -> Envelope:
    return Envelope.from_bytes(envelope.to_bytes())


# -- announcements ----------------------------------------------------------------------------------------------

def test_announcements_verify_under_the_identity_keys_the_spec_lists() -> None:
    # Prepare: three enrolled nodes; the spec lists their identity keys as OpenSSH lines
    identities = {dataset: _identity() for dataset in (A, B, C)}
    participants = {dataset: _openssh(key) for dataset, key in identities.items()}
    keys = {dataset: StudyKeys(STUDY, SPEC_SHA256, dataset, ROLES[dataset]) for dataset in identities}
    # Execute: each node announces; the relay carries the bytes; each node accepts the other two
    wire = {dataset: keys[dataset].announce(identities[dataset]).to_bytes() for dataset in identities}
    for receiver in keys.values():
        for dataset, data in wire.items():
            if dataset != receiver.dataset:
                receiver.accept(Announcement.from_bytes(data), load_identity_public_key(participants[dataset]),
                                dataset)
    # Assert: each node trusts exactly the other two datasets; an announcement carries study, spec, dataset, role
    for dataset, node in keys.items():
        assert node.peers == frozenset({A, B, C} - {dataset})
    announcement = Announcement.from_bytes(wire[A])
    assert (announcement.study_id, announcement.spec_sha256, announcement.dataset, announcement.role) == \
        (STUDY, SPEC_SHA256, A, "outcome")
    assert len(announcement.public_key) == 32


def test_an_impostor_announcement_is_refused(study: _Study) -> None:
    # Prepare: M holds a valid identity key of its own, but not the one the spec lists for A
    impostor = StudyKeys(STUDY, SPEC_SHA256, A, "outcome")
    forged = impostor.announce(_identity())
    impostor.accept(Announcement.from_bytes(study.announced[B]), study.listed(B), B)
    # Execute / Assert
    with pytest.raises(EnvelopeError, match="not signed by its enrolled identity key"):
        study.keys[B].accept(forged, study.listed(A), A)
    # B still holds A's genuine key: the impostor's envelopes do not open, A's do
    with pytest.raises(EnvelopeError, match="does not open"):
        study.keys[B].open(impostor.seal(B, LABEL, PAYLOAD), LABEL)
    assert study.keys[B].open(study.keys[A].seal(B, LABEL, PAYLOAD), LABEL) == PAYLOAD


def test_a_relay_swapping_the_announced_key_for_its_own_is_refused(study: _Study) -> None:
    # Prepare: the relay puts its own X25519 key into A's signed announcement, on the wire
    relay_key = X25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.Raw,
                                                                       serialization.PublicFormat.Raw)
    fields = json.loads(study.announced[A])
    fields["key"] = relay_key.hex()
    swapped = Announcement.from_bytes(json.dumps(fields).encode())
    receiver = StudyKeys(STUDY, SPEC_SHA256, B, "factor")
    # Execute / Assert: the signature check fails and B trusts no key for A
    with pytest.raises(EnvelopeError, match="not signed by its enrolled identity key"):
        receiver.accept(swapped, study.listed(A), A)
    assert receiver.peers == frozenset()


@pytest.mark.parametrize("field, value", [("role", "factor"), ("public_key", bytes(31))],
                         ids=["role-rewritten", "not-an-x25519-key"])
def test_a_relay_rewriting_an_announcement_is_refused(study: _Study, field: str, value: Any) -> None:
    # Prepare: A's announcement with one signed field rewritten
    rewritten = dataclasses.replace(Announcement.from_bytes(study.announced[A]), **{field: value})
    receiver = StudyKeys(STUDY, SPEC_SHA256, B, "factor")
    # Execute / Assert
    with pytest.raises(EnvelopeError):
        receiver.accept(rewritten, study.listed(A), A)
    assert receiver.peers == frozenset()


@pytest.mark.parametrize("study_id, spec_sha256, claimed", [
    ("study-2025-018", SPEC_SHA256, A),
    (STUDY, hashlib.sha256(b"another version of the spec").hexdigest(), A),
    (STUDY, SPEC_SHA256, C),
], ids=["another-study", "another-spec", "another-dataset"])
def test_an_announcement_replayed_into_another_study_or_for_another_dataset_is_refused(
        study: _Study, study_id: str, spec_sha256: str, claimed: str) -> None:
    # Prepare: A's genuine announcement offered to a node of another study or spec, or as C's key
    receiver = StudyKeys(study_id, spec_sha256, B, "factor")
    announcement = Announcement.from_bytes(study.announced[A])
    # Execute / Assert
    with pytest.raises(EnvelopeError, match="another study or dataset"):
        receiver.accept(announcement, study.listed(claimed), claimed)


def test_a_relay_rewriting_the_study_of_a_replayed_announcement_is_refused() -> None:
    # Prepare: A's announcement from an earlier study, relabelled by the relay with the current study id
    earlier = _start(study_id="study-2024-003")
    fields = json.loads(earlier.announced[A])
    fields["study"] = STUDY
    replayed = Announcement.from_bytes(json.dumps(fields).encode())
    receiver = StudyKeys(STUDY, SPEC_SHA256, B, "factor")
    # Execute / Assert
    with pytest.raises(EnvelopeError, match="not signed by its enrolled identity key"):
        receiver.accept(replayed, earlier.listed(A), A)


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b'{"v": 2}',
                                  b'{"v": 1, "study": "s", "spec": "00", "dataset": "d", "role": "r", '
                                  b'"key": "zz", "sig": ""}'],
                         ids=["not-json", "not-an-object", "version-2", "key-not-hex"])
def test_malformed_announcement_bytes_are_refused(data: bytes) -> None:
    # Execute / Assert
    with pytest.raises(EnvelopeError):
        Announcement.from_bytes(data)


def test_identity_keys_must_be_openssh_elliptic_curve_keys(study: _Study) -> None:
    # Prepare: an OpenSSH Ed25519 line and a line that is no key at all
    ed25519 = Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                                     serialization.PublicFormat.OpenSSH).decode()
    # Execute
    listed = load_identity_public_key(study.participants[A] + "\n")
    # Assert
    assert listed.public_numbers() == study.identities[A].public_key().public_numbers()
    with pytest.raises(EnvelopeError, match="not an elliptic-curve key"):
        load_identity_public_key(ed25519)
    with pytest.raises(EnvelopeError, match="not an OpenSSH public key"):
        load_identity_public_key("ecdsa-sha2-nistp384 AAAA-not-base64")


# -- envelopes --------------------------------------------------------------------------------------------------

def test_a_seals_to_b_and_b_opens_the_payload(study: _Study) -> None:
    # Prepare
    sender, receiver = study.keys[A], study.keys[B]
    # Execute: A seals twice, the relay carries bytes, B opens both
    first, second = sender.seal(B, LABEL, PAYLOAD), sender.seal(B, LABEL, b"second")
    opened = [receiver.open(_relayed(envelope), LABEL) for envelope in (first, second)]
    # Assert: B receives exactly the payloads, under headers naming study, sender, receiver, label and sequence
    assert opened == [PAYLOAD, b"second"]
    assert (first.study_id, first.sender, first.receiver, first.label) == (STUDY, A, B, LABEL)
    assert (first.sequence, second.sequence) == (1, 2)
    assert first.nonce != second.nonce


def test_the_relay_sees_only_the_header_and_the_ciphertext_length(study: _Study) -> None:
    # Prepare / Execute
    wire = study.keys[A].seal(B, LABEL, PAYLOAD).to_bytes()
    # Assert: length-prefixed header, 12-byte nonce, ciphertext of the payload's length plus a 16-byte tag
    size = int.from_bytes(wire[:4], "big")
    assert json.loads(wire[4:4 + size]) == [ENVELOPE_VERSION, STUDY, A, B, LABEL, 1]
    assert len(wire) == 4 + size + 12 + len(PAYLOAD) + 16
    assert PAYLOAD not in wire
    assert all(PAYLOAD[i:i + 8] not in wire for i in range(len(PAYLOAD) - 7))


def test_a_node_outside_the_pair_cannot_open_the_envelope(study: _Study) -> None:
    # Prepare: C has verified keys for A and B, and intercepts A's envelope to B
    envelope = study.keys[A].seal(B, LABEL, PAYLOAD)
    redirected = dataclasses.replace(envelope, receiver=C)
    # C also tries under B's dataset name, with its own key pair and A's verified announcement
    posing = StudyKeys(STUDY, SPEC_SHA256, B, "factor")
    posing.accept(Announcement.from_bytes(study.announced[A]), study.listed(A), A)
    # Execute / Assert
    with pytest.raises(EnvelopeError, match="reached"):
        study.keys[C].open(envelope, LABEL)
    with pytest.raises(EnvelopeError, match="does not open"):
        study.keys[C].open(redirected, LABEL)
    with pytest.raises(EnvelopeError, match="does not open"):
        posing.open(envelope, LABEL)
    # ... while B still opens it
    assert study.keys[B].open(envelope, LABEL) == PAYLOAD


@pytest.mark.parametrize("part, index", [("ciphertext", 0), ("ciphertext", -1), ("nonce", 0)],
                         ids=["first-ciphertext-byte", "last-tag-byte", "nonce-byte"])
def test_a_tampered_ciphertext_is_refused(study: _Study, part: str, index: int) -> None:
    # Prepare: one bit flipped by the relay
    envelope = study.keys[A].seal(B, LABEL, PAYLOAD)
    data = bytearray(getattr(envelope, part))
    data[index] ^= 0x01
    change: dict[str, Any] = {part: bytes(data)}
    tampered = dataclasses.replace(envelope, **change)
    # Execute / Assert
    with pytest.raises(EnvelopeError, match="does not open"):
        study.keys[B].open(tampered, LABEL)
    # a failed attempt does not use up the sequence number: the genuine envelope still opens
    assert study.keys[B].open(envelope, LABEL) == PAYLOAD


@pytest.mark.parametrize("changes, opener, label, refusal", [
    ({"label": "cohort-list"}, B, "cohort-list", "does not open"),
    ({"label": "cohort-list"}, B, LABEL, "reached"),
    ({"sequence": 7}, B, LABEL, "does not open"),
    ({"sender": C}, B, LABEL, "does not open"),
    ({"receiver": C}, C, LABEL, "does not open"),
    ({"sender": B, "receiver": A}, A, LABEL, "does not open"),
    ({"study_id": "study-2025-018"}, B, LABEL, "reached"),
], ids=["label-opened-as-relabelled", "label-opened-as-expected", "sequence", "sender", "receiver", "reflected",
        "study"])
def test_a_tampered_header_is_refused(study: _Study, changes: dict[str, Any], opener: str, label: str,
                                      refusal: str) -> None:
    # Prepare: the relay rewrites header fields and delivers to `opener`. The header is the AEAD's associated
    # data ("does not open"); a header that names another receiver, label or study is refused before ("reached")
    tampered = dataclasses.replace(study.keys[A].seal(B, LABEL, PAYLOAD), **changes)
    # Execute / Assert
    with pytest.raises(EnvelopeError, match=refusal):
        study.keys[opener].open(_relayed(tampered), label)


def test_a_replayed_envelope_is_refused(study: _Study) -> None:
    # Prepare
    wire = study.keys[A].seal(B, LABEL, PAYLOAD).to_bytes()
    # Execute
    first = study.keys[B].open(Envelope.from_bytes(wire), LABEL)
    # Assert
    assert first == PAYLOAD
    with pytest.raises(EnvelopeError, match="replay"):
        study.keys[B].open(Envelope.from_bytes(wire), LABEL)


def test_an_envelope_from_a_sender_never_accepted_is_refused(study: _Study) -> None:
    # Prepare: D, enrolled for another dataset but not listed in this study, verified B's key and seals to B
    outsider = StudyKeys(STUDY, SPEC_SHA256, "vantaa/health_care", "factor")
    outsider.accept(Announcement.from_bytes(study.announced[B]), study.listed(B), B)
    # Execute / Assert
    with pytest.raises(EnvelopeError, match="no verified key"):
        study.keys[B].open(outsider.seal(B, LABEL, PAYLOAD), LABEL)


def test_an_envelope_under_a_stale_key_is_refused(study: _Study) -> None:
    # Prepare: A restarts and announces a new key; B still holds the one A announced first (wrong key)
    restarted = StudyKeys(STUDY, SPEC_SHA256, A, "outcome")
    restarted.accept(Announcement.from_bytes(study.announced[B]), study.listed(B), B)
    # Execute / Assert
    with pytest.raises(EnvelopeError, match="does not open"):
        study.keys[B].open(restarted.seal(B, LABEL, PAYLOAD), LABEL)


def test_destroy_forgets_the_study_keys(study: _Study) -> None:
    # Prepare: an envelope from B to A sealed before A destroys its keys
    pending = study.keys[B].seal(A, LABEL, PAYLOAD)
    peers = {dataset: Announcement.from_bytes(study.announced[dataset]).public_key for dataset in (B, C)}
    # Execute
    audit = study.keys[A].destroy()
    # Assert: A can neither seal nor open; what remains is a digest of the peers' public keys
    assert study.keys[A].peers == frozenset()
    with pytest.raises(EnvelopeError, match="no verified key"):
        study.keys[A].seal(B, LABEL, PAYLOAD)
    with pytest.raises(EnvelopeError, match="no verified key"):
        study.keys[A].open(pending, LABEL)
    assert audit == hashlib.sha256(b"".join(d.encode() + peers[d] for d in sorted(peers))).hexdigest()


def _framed(header: bytes, body: bytes = bytes(40)) -> bytes:
    return len(header).to_bytes(4, "big") + header + body


@pytest.mark.parametrize("wire", [
    b"",
    _framed(b"[1,2,3"),
    _framed(b"{}"),
    _framed(json.dumps([2, STUDY, A, B, LABEL, 1]).encode()),
], ids=["empty", "broken-header", "header-not-a-list", "version-2"])
def test_malformed_envelope_bytes_are_refused(wire: bytes) -> None:
    # Execute / Assert
    with pytest.raises(EnvelopeError):
        Envelope.from_bytes(wire)


def test_a_truncated_envelope_is_refused(study: _Study) -> None:
    # Prepare: the relay drops all but 27 bytes after the header (a nonce and a tag need 28)
    wire = study.keys[A].seal(B, LABEL, b"").to_bytes()
    # Execute / Assert
    with pytest.raises(EnvelopeError, match="truncated"):
        Envelope.from_bytes(wire[:-1])
