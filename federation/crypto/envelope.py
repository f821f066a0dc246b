"""Node-to-node messages of a cross-sector study: announced keys and sealed envelopes.

The protocol (README, "Cross-sector studies: protocol and threat model"):

1. **Announce.** For each study every participating node draws an ephemeral X25519 key pair (kept in
   memory only) and announces its public half, signed (ECDSA P-384, SHA-384) with its *identity key* —
   the SuperNode key it enrolled with the coordinator. The signed bytes carry a domain label, the
   study, the spec's SHA-256, the dataset and the role, so an announcement cannot be replayed into
   another study, for another dataset or in another role.
2. **Verify.** A node accepts an announcement only if it verifies under the identity key that the
   *coordinator-signed* spec lists for that dataset (``participants``). A relay that swaps keys, or a
   node outside the study, fails here; an impostor would need the enrolled node's private key.
3. **Seal.** A payload from A to B is AES-256-GCM under a key derived by HKDF-SHA256 from the X25519
   shared secret, with the spec's SHA-256 as salt and ``tillit/envelope/v1 | study | sender | receiver``
   as info (one key per direction). The header (version, study, sender, receiver, label, sequence) is
   the associated data: a relay sees only the header and the ciphertext's length; a tampered,
   redirected or relabelled envelope fails to open, and the receiver refuses a (sender, label,
   sequence) it has opened before.

Everything here is ``cryptography``'s primitives composed as written above; nothing is home-made.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["ANNOUNCE_LABEL", "ENVELOPE_VERSION", "Announcement", "Envelope", "EnvelopeError", "StudyKeys",
           "load_identity_public_key"]

ENVELOPE_VERSION = 1
ANNOUNCE_LABEL = b"tillit/linkage-key/v1"
_INFO = b"tillit/envelope/v1"


class EnvelopeError(Exception):
    """An announcement or envelope that must not be trusted: bad signature, wrong study, tampered, replayed."""


def load_identity_public_key(openssh: str) -> ec.EllipticCurvePublicKey:
    """An enrolled node's identity key (the SuperNode key, OpenSSH format) as listed in a signed spec."""
    try:
        key = serialization.load_ssh_public_key(openssh.strip().encode())
    except (ValueError, UnicodeError):
        raise EnvelopeError("a participant's identity key is not an OpenSSH public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise EnvelopeError("a participant's identity key is not an elliptic-curve key")
    return key


@dataclass(frozen=True)
class Announcement:
    """A node's ephemeral X25519 public key for one study, signed by its identity key."""

    study_id: str
    spec_sha256: str
    dataset: str
    role: str
    public_key: bytes
    signature: bytes

    def signed_bytes(self) -> bytes:
        header = json.dumps([ENVELOPE_VERSION, self.study_id, self.spec_sha256, self.dataset, self.role],
                            separators=(",", ":")).encode()
        return ANNOUNCE_LABEL + b"\x00" + header + b"\x00" + self.public_key

    def verify(self, identity: ec.EllipticCurvePublicKey, study_id: str, spec_sha256: str, dataset: str) -> None:
        if (self.study_id, self.spec_sha256, self.dataset) != (study_id, spec_sha256, dataset):
            raise EnvelopeError(f"a key announced for {self.dataset} belongs to another study or dataset")
        if len(self.public_key) != 32:
            raise EnvelopeError(f"the key announced for {dataset} is not an X25519 public key")
        try:
            identity.verify(self.signature, self.signed_bytes(), ec.ECDSA(hashes.SHA384()))
        except InvalidSignature:
            raise EnvelopeError(f"the key announced for {dataset} is not signed by its enrolled identity key") \
                from None

    def to_bytes(self) -> bytes:
        return json.dumps({"v": ENVELOPE_VERSION, "study": self.study_id, "spec": self.spec_sha256,
                           "dataset": self.dataset, "role": self.role, "key": self.public_key.hex(),
                           "sig": self.signature.hex()}, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Announcement:
        try:
            d = json.loads(data)
            if d["v"] != ENVELOPE_VERSION:
                raise EnvelopeError(f"announcement version {d['v']} is not {ENVELOPE_VERSION}")
            return cls(str(d["study"]), str(d["spec"]), str(d["dataset"]), str(d["role"]),
                       bytes.fromhex(d["key"]), bytes.fromhex(d["sig"]))
        except (ValueError, KeyError, TypeError):
            raise EnvelopeError("a malformed key announcement") from None


@dataclass(frozen=True)
class Envelope:
    """A sealed payload from one node to another. The header travels in the clear and is authenticated."""

    study_id: str
    sender: str
    receiver: str
    label: str
    sequence: int
    nonce: bytes
    ciphertext: bytes

    def header(self) -> bytes:
        return json.dumps([ENVELOPE_VERSION, self.study_id, self.sender, self.receiver, self.label, self.sequence],
                          separators=(",", ":")).encode()

    def to_bytes(self) -> bytes:
        head = self.header()
        return len(head).to_bytes(4, "big") + head + self.nonce + self.ciphertext

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        try:
            size = int.from_bytes(data[:4], "big")
            version, study_id, sender, receiver, label, sequence = json.loads(data[4:4 + size])
            if version != ENVELOPE_VERSION:
                raise EnvelopeError(f"envelope version {version} is not {ENVELOPE_VERSION}")
            rest = data[4 + size:]
            if len(rest) < 12 + 16:
                raise EnvelopeError("a truncated envelope")
            return cls(str(study_id), str(sender), str(receiver), str(label), int(sequence), rest[:12], rest[12:])
        except (ValueError, TypeError, UnicodeDecodeError):
            raise EnvelopeError("a malformed envelope") from None


@dataclass
class StudyKeys:
    """One node's keys for one study, in memory only: its ephemeral X25519 key and the peers it verified."""

    study_id: str
    spec_sha256: str
    dataset: str
    role: str
    _private: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate, repr=False)
    _peers: dict[str, X25519PublicKey] = field(default_factory=dict, repr=False)
    _opened: set[tuple[str, str, int]] = field(default_factory=set, repr=False)
    _sequence: int = 0

    def announce(self, identity: ec.EllipticCurvePrivateKey) -> Announcement:
        public = self._private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        unsigned = Announcement(self.study_id, self.spec_sha256, self.dataset, self.role, public, b"")
        return Announcement(self.study_id, self.spec_sha256, self.dataset, self.role, public,
                            identity.sign(unsigned.signed_bytes(), ec.ECDSA(hashes.SHA384())))

    def accept(self, announcement: Announcement, identity: ec.EllipticCurvePublicKey, dataset: str) -> None:
        """Trust ``dataset``'s announced key once it verifies under the identity key the signed spec lists."""
        announcement.verify(identity, self.study_id, self.spec_sha256, dataset)
        key = X25519PublicKey.from_public_bytes(announcement.public_key)
        known = self._peers.get(dataset)
        raw = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if known is not None and known.public_bytes(*raw) != key.public_bytes(*raw):
            raise EnvelopeError(f"{dataset} announced a second, different key for study {self.study_id}")
        self._peers[dataset] = key

    @property
    def peers(self) -> frozenset[str]:
        return frozenset(self._peers)

    def _key(self, sender: str, receiver: str) -> bytes:
        peer = receiver if sender == self.dataset else sender
        if peer not in self._peers:
            raise EnvelopeError(f"no verified key for {peer} in study {self.study_id}")
        shared = self._private.exchange(self._peers[peer])
        info = _INFO + b"|" + json.dumps([self.study_id, sender, receiver], separators=(",", ":")).encode()
        return HKDF(hashes.SHA256(), 32, bytes.fromhex(self.spec_sha256), info).derive(shared)

    def seal(self, receiver: str, label: str, payload: bytes) -> Envelope:
        self._sequence += 1
        unsealed = Envelope(self.study_id, self.dataset, receiver, label, self._sequence, os.urandom(12), b"")
        sealed = AESGCM(self._key(self.dataset, receiver)).encrypt(unsealed.nonce, payload, unsealed.header())
        return Envelope(self.study_id, self.dataset, receiver, label, self._sequence, unsealed.nonce, sealed)

    def open(self, envelope: Envelope, label: str) -> bytes:
        """The payload of an envelope addressed to this node under ``label``, once; EnvelopeError otherwise."""
        if envelope.study_id != self.study_id or envelope.receiver != self.dataset or envelope.label != label:
            raise EnvelopeError(f"an envelope for {envelope.receiver} ({envelope.label}) reached {self.dataset} "
                                f"expecting {label}")
        seen = (envelope.sender, envelope.label, envelope.sequence)
        if seen in self._opened:
            raise EnvelopeError(f"envelope {envelope.sequence} from {envelope.sender} was opened before (replay)")
        try:
            payload = AESGCM(self._key(envelope.sender, self.dataset)).decrypt(
                envelope.nonce, envelope.ciphertext, envelope.header())
        except InvalidTag:
            raise EnvelopeError(f"an envelope from {envelope.sender} does not open: tampered, or not sealed "
                                "with the sender's announced key") from None
        self._opened.add(seen)
        return payload

    def destroy(self) -> str:
        """Forget every key of this study; a digest of the peers' public keys remains for the audit trail."""
        digest = hashlib.sha256()
        for dataset in sorted(self._peers):
            digest.update(dataset.encode() + self._peers[dataset].public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw))
        self._peers.clear()
        self._private = X25519PrivateKey.generate()   # the study's key is no longer reachable
        return digest.hexdigest()
