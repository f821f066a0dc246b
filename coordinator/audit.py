"""The audit log: every state change and ledger charge, hash-chained and signed by the coordinator.

Each entry's hash covers its sequence number, time, actor, action, subject, payload and the
previous entry's hash; the coordinator's Ed25519 key signs the hash. :func:`verify_chain` walks
the log and says, entry by entry, what was edited, deleted, inserted or reordered, and whether the
anchors kept outside the database (a node's recorded anchors, the register's published head) still
lie on it. Appends happen in the same transaction as the change they record, under a lock on the
chain head; an append refuses to go on when the head is not the log's last entry. Whether the tables
agree with the chain is :mod:`coordinator.verify`'s question.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.errors import Conflict
from coordinator.clock import now
from coordinator.models import AuditEntry, ChainHead
from federation.signing import SigningKey, sign_bytes, verify_bytes
from federation.spec import AuditAnchor

__all__ = ["GENESIS", "ChainReport", "anchor", "append", "entry_hash", "parse_anchor", "verify_chain"]

GENESIS = "0" * 64


def entry_hash(seq: int, at: str, actor: str, action: str, subject: str, payload: str, prev_hash: str) -> str:
    body = json.dumps([seq, at, actor, action, subject, payload, prev_hash], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def append(session: Session, key: SigningKey, actor: str, action: str, subject: str,
           payload: dict[str, Any] | None = None) -> AuditEntry:
    head = session.execute(select(ChainHead).where(ChainHead.id == 1).with_for_update()).scalar_one()
    last = session.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
    tip = (last[0], last[1]) if last is not None else (0, GENESIS)
    if tip != (head.seq, head.hash):
        raise Conflict(f"the audit chain's head (entry {head.seq}) is not the log's last entry "
                       f"({last[0] if last else 'none'}): the log was cut or rewritten; run 'tillit audit verify'")
    seq, at = head.seq + 1, now()
    body = json.dumps(payload or {}, sort_keys=True, separators=(",", ":"), default=str)
    digest = entry_hash(seq, at, actor, action, subject, body, head.hash)
    entry = AuditEntry(seq=seq, at=at, actor=actor, action=action, subject=subject, payload=body,
                       prev_hash=head.hash, hash=digest, signature=sign_bytes(key, digest.encode()))
    session.add(entry)
    head.seq, head.hash = seq, digest
    return entry


def anchor(session: Session) -> AuditAnchor:
    """Where the chain stands now (its last entry), as a study spec carries it."""
    head = session.execute(select(ChainHead).where(ChainHead.id == 1)).scalar_one()
    entry = session.get(AuditEntry, head.seq)
    if entry is None:
        raise Conflict("the audit chain is empty or its head names no entry; run 'tillit audit verify'")
    return AuditAnchor(seq=entry.seq, hash=entry.hash, at=dt.datetime.fromisoformat(entry.at))


def parse_anchor(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` (as ``tillit node ledger`` prints a recorded anchor) into its parts; ValueError if malformed."""
    seq, _, digest = text.strip().partition(":")
    if not seq.isdigit() or int(seq) < 1 or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"an anchor is SEQ:HASH (a positive entry number and a 64-digit hex hash), not {text!r}")
    return int(seq), digest


@dataclass
class ChainReport:
    entries: int
    head_seq: int
    head_hash: str
    problems: list[str] = field(default_factory=list)
    #: the entries whose content matches their hash and whose signature holds: what the tables are checked against
    trusted: list[AuditEntry] = field(default_factory=list, repr=False)

    @property
    def intact(self) -> bool:
        return not self.problems


def verify_chain(session: Session, key: Ed25519PublicKey, anchors: Sequence[tuple[int, str]] = ()) -> ChainReport:
    entries = list(session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars())
    head = session.execute(select(ChainHead).where(ChainHead.id == 1)).scalar_one()
    report = ChainReport(entries=len(entries), head_seq=head.seq, head_hash=head.hash)
    expected_seq, prev = 1, GENESIS
    for entry in entries:
        own = entry_hash(entry.seq, entry.at, entry.actor, entry.action, entry.subject, entry.payload,
                         entry.prev_hash)
        if entry.seq > expected_seq:
            gap = (f"entry {expected_seq}" if entry.seq == expected_seq + 1
                   else f"entries {expected_seq}-{entry.seq - 1}")
            report.problems.append(f"{gap} deleted: the log jumps from {expected_seq - 1} to {entry.seq}")
        if own != entry.hash:
            moved = _original_position(entry, len(entries) + 2)
            if moved is not None:
                report.problems.append(f"entry {entry.seq} reordered: it was written as entry {moved}")
            else:
                report.problems.append(f"entry {entry.seq} edited: its content no longer matches its hash")
        elif not verify_bytes(key, entry.hash.encode(), entry.signature):
            report.problems.append(f"entry {entry.seq} inserted: not signed by the coordinator's key")
        else:
            report.trusted.append(entry)
            if entry.prev_hash != prev and entry.seq == expected_seq:
                report.problems.append(f"entry {entry.seq} does not follow entry {entry.seq - 1}: "
                                       "an entry before it was inserted, removed or reordered")
        expected_seq, prev = entry.seq + 1, entry.hash
    if entries and (head.seq, head.hash) != (entries[-1].seq, entries[-1].hash):
        report.problems.append(f"entries after {entries[-1].seq} deleted: the chain head is entry {head.seq}")
    elif not entries and head.seq:
        report.problems.append(f"all {head.seq} entries deleted")
    report.problems.extend(_off_anchors(entries, anchors))
    return report


def _off_anchors(entries: list[AuditEntry], anchors: Sequence[tuple[int, str]]) -> list[str]:
    """Anchors kept outside the database that the log no longer passes through."""
    hashes = {e.seq: e.hash for e in entries}
    last = entries[-1].seq if entries else 0
    found = []
    for seq, digest in sorted(set(anchors)):
        if seq > last:
            found.append(f"anchor {seq} ({digest[:12]}…): the log ends at entry {last}: its tail was cut")
        elif seq not in hashes:
            found.append(f"anchor {seq} ({digest[:12]}…): entry {seq} is missing from the log")
        elif hashes[seq] != digest:
            found.append(f"anchor {seq} ({digest[:12]}…): entry {seq} is {hashes[seq][:12]}… here: the log was "
                         f"rewritten at or before entry {seq}")
    return found


def _original_position(entry: AuditEntry, limit: int) -> int | None:
    """The sequence number this entry's content was hashed under, if it is not its own."""
    for seq in range(1, limit):
        if seq != entry.seq and entry_hash(seq, entry.at, entry.actor, entry.action, entry.subject,
                                           entry.payload, entry.prev_hash) == entry.hash:
            return seq
    return None
