"""The audit log: every state change and ledger charge, hash-chained and signed by the coordinator.

Each entry's hash covers its sequence number, time, actor, action, subject, payload and the
previous entry's hash; the coordinator's Ed25519 key signs the hash. :func:`verify_chain` walks
the log and says, entry by entry, what was edited, deleted, inserted or reordered. Appends happen
in the same transaction as the change they record, under a lock on the chain head.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from coordinator.clock import now
from coordinator.models import AuditEntry, ChainHead
from federation.signing import SigningKey, sign_bytes, verify_bytes

__all__ = ["GENESIS", "ChainReport", "append", "entry_hash", "verify_chain"]

GENESIS = "0" * 64


def entry_hash(seq: int, at: str, actor: str, action: str, subject: str, payload: str, prev_hash: str) -> str:
    body = json.dumps([seq, at, actor, action, subject, payload, prev_hash], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def append(session: Session, key: SigningKey, actor: str, action: str, subject: str,
           payload: dict[str, Any] | None = None) -> AuditEntry:
    head = session.execute(select(ChainHead).where(ChainHead.id == 1).with_for_update()).scalar_one()
    seq, at = head.seq + 1, now()
    body = json.dumps(payload or {}, sort_keys=True, separators=(",", ":"), default=str)
    digest = entry_hash(seq, at, actor, action, subject, body, head.hash)
    entry = AuditEntry(seq=seq, at=at, actor=actor, action=action, subject=subject, payload=body,
                       prev_hash=head.hash, hash=digest, signature=sign_bytes(key, digest.encode()))
    session.add(entry)
    head.seq, head.hash = seq, digest
    return entry


@dataclass
class ChainReport:
    entries: int
    head_seq: int
    head_hash: str
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def verify_chain(session: Session, key: Ed25519PublicKey) -> ChainReport:
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
        elif entry.prev_hash != prev and entry.seq == expected_seq:
            report.problems.append(f"entry {entry.seq} does not follow entry {entry.seq - 1}: "
                                   "an entry before it was inserted, removed or reordered")
        expected_seq, prev = entry.seq + 1, entry.hash
    if entries and (head.seq, head.hash) != (entries[-1].seq, entries[-1].hash):
        report.problems.append(f"entries after {entries[-1].seq} deleted: the chain head is entry {head.seq}")
    elif not entries and head.seq:
        report.problems.append(f"all {head.seq} entries deleted")
    return report


def _original_position(entry: AuditEntry, limit: int) -> int | None:
    """The sequence number this entry's content was hashed under, if it is not its own."""
    for seq in range(1, limit):
        if seq != entry.seq and entry_hash(seq, entry.at, entry.actor, entry.action, entry.subject,
                                           entry.payload, entry.prev_hash) == entry.hash:
            return seq
    return None
