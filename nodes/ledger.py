"""The node's own privacy ledger: a local cap per dataset, and every charge and release.

Defence in depth: whatever the coordinator says, a node refuses a study that would take its
dataset past the cap its own privacy officer set. Amounts are exact integers of 1e-9 ρ. A charge
is committed (SQLite, synchronous, ``BEGIN IMMEDIATE``) before the node releases anything, so a
crash after the charge loses budget, never privacy. Charges are idempotent per study and dataset;
each release (round) of a study is recorded once, so a study cannot draw fresh noise twice for the
same round.

The ledger also keeps every audit anchor the node has seen in a signed spec (where the coordinator's audit
chain stood right after the study's charge) and refuses a spec whose anchor goes backwards — the rule is in
:meth:`NodeLedger.record_anchor`.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common.errors import RefusalCode, StudyRefused
from federation.privacy import Balance, PrivacyLoss
from federation.spec import AuditAnchor

__all__ = ["Anchor", "Charge", "NodeLedger"]

#: an honest coordinator's clock may step back a little (NTP); anchors out of time order by less are accepted
CLOCK_SLACK = dt.timedelta(minutes=1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS caps (
    dataset TEXT PRIMARY KEY,
    cap_units INTEGER NOT NULL CHECK (cap_units >= 0),
    set_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS charges (
    study_id TEXT NOT NULL,
    dataset TEXT NOT NULL,
    units INTEGER NOT NULL CHECK (units >= 0),
    spec_sha256 TEXT NOT NULL,
    charged_at TEXT NOT NULL,
    PRIMARY KEY (study_id, dataset)
);
CREATE TABLE IF NOT EXISTS anchors (
    coordinator TEXT NOT NULL,
    study_id TEXT NOT NULL,
    seq INTEGER NOT NULL CHECK (seq >= 1),
    hash TEXT NOT NULL,
    at TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (coordinator, study_id)
);
CREATE TABLE IF NOT EXISTS releases (
    study_id TEXT NOT NULL,
    dataset TEXT NOT NULL,
    round INTEGER NOT NULL,
    released_at TEXT NOT NULL,
    noisy_count REAL,
    PRIMARY KEY (study_id, dataset, round)
);
"""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Charge:
    study_id: str
    dataset: str
    loss: PrivacyLoss
    new: bool


@dataclass(frozen=True)
class Anchor:
    """An audit anchor as the node recorded it: which coordinator key signed it, for which study."""

    coordinator: str
    study_id: str
    seq: int
    hash: str
    at: str


def _utc(at: dt.datetime) -> str:
    """One text form for every anchor time, so that the ledger compares them as text."""
    return at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


class NodeLedger:
    """The node's SQLite ledger; ``delta`` is the δ at which its local cap was set (for showing ε)."""

    def __init__(self, path: Path, delta: float = 1e-6) -> None:
        self.path = path
        self.delta = delta
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    def set_cap(self, dataset: str, cap: PrivacyLoss) -> None:
        with self._connect() as db:
            db.execute("INSERT INTO caps VALUES (?, ?, ?) ON CONFLICT(dataset) DO UPDATE SET "
                       "cap_units = excluded.cap_units, set_at = excluded.set_at", (dataset, cap.units, _now()))

    def cap(self, dataset: str) -> PrivacyLoss | None:
        with self._connect() as db:
            row = db.execute("SELECT cap_units FROM caps WHERE dataset = ?", (dataset,)).fetchone()
        return PrivacyLoss(row[0]) if row else None

    def spent(self, dataset: str) -> PrivacyLoss:
        with self._connect() as db:
            return self._spent(db, dataset)

    def balance(self, dataset: str) -> Balance:
        """The local cap (zero if none is set), what was spent and what is left."""
        with self._connect() as db:
            return self._balance(db, dataset) or Balance(f"{dataset} (local budget)", "all", PrivacyLoss.zero(),
                                                         self._spent(db, dataset), self.delta)

    def _balance(self, db: sqlite3.Connection, dataset: str) -> Balance | None:
        row = db.execute("SELECT cap_units FROM caps WHERE dataset = ?", (dataset,)).fetchone()
        if row is None:
            return None
        return Balance(f"{dataset} (local budget)", "all", PrivacyLoss(row[0]), self._spent(db, dataset), self.delta)

    @staticmethod
    def _spent(db: sqlite3.Connection, dataset: str) -> PrivacyLoss:
        row = db.execute("SELECT COALESCE(SUM(units), 0) FROM charges WHERE dataset = ?", (dataset,)).fetchone()
        return PrivacyLoss(int(row[0]))

    def check(self, study_id: str, dataset: str, loss: PrivacyLoss) -> None:
        """Refuse (without charging) when the study would exceed the cap."""
        with self._connect() as db:
            self._check(db, study_id, dataset, loss)

    def _check(self, db: sqlite3.Connection, study_id: str, dataset: str, loss: PrivacyLoss) -> bool:
        existing = db.execute("SELECT units FROM charges WHERE study_id = ? AND dataset = ?",
                              (study_id, dataset)).fetchone()
        if existing is not None:
            if existing[0] != loss.units:
                raise StudyRefused(f"study {study_id} was charged {PrivacyLoss(existing[0])} on {dataset} "
                                   f"and now costs {loss}: the spec changed", RefusalCode.MALFORMED_SPEC)
            return True
        local = self._balance(db, dataset)
        if local is None:
            raise StudyRefused(f"no local privacy budget is set for {dataset}", RefusalCode.BUDGET_EXCEEDED)
        if not local.fits(loss):
            raise StudyRefused(f"study {study_id} refused by the node's own ledger: {local.shortfall(loss)}",
                               RefusalCode.BUDGET_EXCEEDED)
        return False

    def charge(self, study_id: str, dataset: str, loss: PrivacyLoss, spec_sha256: str) -> Charge:
        """Durably charge the study (once); raises ``StudyRefused`` if the cap would be exceeded."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                already = self._check(db, study_id, dataset, loss)
                if not already:
                    db.execute("INSERT INTO charges VALUES (?, ?, ?, ?, ?)",
                               (study_id, dataset, loss.units, spec_sha256, _now()))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return Charge(study_id, dataset, loss, new=not already)

    def record_release(self, study_id: str, dataset: str, round_: int, noisy_count: float | None = None) -> None:
        """Record one release of a study; a second release of the same round is refused."""
        with self._connect() as db:
            try:
                db.execute("INSERT INTO releases VALUES (?, ?, ?, ?, ?)",
                           (study_id, dataset, round_, _now(), noisy_count))
            except sqlite3.IntegrityError:
                raise StudyRefused(f"round {round_} of study {study_id} was already released by {dataset}",
                                   RefusalCode.ALREADY_RELEASED) from None

    def record_anchor(self, who: str, coordinator: str, study_id: str, anchor: AuditAnchor) -> None:
        """Record a signed spec's audit anchor, or refuse (4304, naming ``who``) one that goes backwards.

        ``coordinator`` names the key that signed the spec (anchors of different coordinators are not
        compared). An audit chain only grows: each position has one entry, and positions and times grow
        together. So, against every anchor recorded for the same coordinator, a new anchor is refused when

        1. its study was recorded with another anchor (the study was signed again, on another chain);
        2. its position was recorded with another hash, or its hash at another position (the chain was
           rewritten at or before that position), or for another study (one position anchors one charge);
        3. it sits below a recorded position with a later time, or above one with an earlier time, by more
           than :data:`CLOCK_SLACK` (the chain was cut and regrown: new entries reuse old positions at new times).

        A study approved earlier but run after a later one is accepted (its position and its time are both
        lower). So once the log's tail is cut or rewritten, every new study anchored at or below the highest
        position a node has seen (and written more than :data:`CLOCK_SLACK` after it) is refused by that node.
        One anchored above every position the node has seen cannot be told apart here from an honest one (that
        would take a consistency proof between the two positions); ``tillit audit verify --anchor`` with the
        anchors a node recorded finds that case.
        """
        seq, hash_, when = anchor.seq, anchor.hash, _utc(anchor.at)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                self._check_anchor(db, who, coordinator, study_id, seq, hash_, when)
                db.execute("INSERT OR IGNORE INTO anchors VALUES (?, ?, ?, ?, ?, ?)",
                           (coordinator, study_id, seq, hash_, when, _now()))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    @staticmethod
    def _check_anchor(db: sqlite3.Connection, who: str, coordinator: str, study_id: str, seq: int, hash_: str,
                      when: str) -> None:
        def refuse(why: str) -> StudyRefused:
            return StudyRefused(f"{who}: study {study_id} is anchored at audit entry {seq}, {why}: the coordinator's "
                                "audit log was rewritten or cut", RefusalCode.ANCHOR_BACKWARDS)

        mine = db.execute("SELECT seq, hash FROM anchors WHERE coordinator = ? AND study_id = ?",
                          (coordinator, study_id)).fetchone()
        if mine is not None:
            if tuple(mine) != (seq, hash_):
                raise refuse(f"but was anchored at entry {mine[0]} ({mine[1][:12]}…) when this node saw it before")
            return
        clash = db.execute("SELECT study_id, seq, hash FROM anchors WHERE coordinator = ? AND (seq = ? OR hash = ?) "
                           "LIMIT 1", (coordinator, seq, hash_)).fetchone()
        if clash is not None:
            other, at_seq, other_hash = clash
            raise refuse(f"where this node saw entry {at_seq} ({other_hash[:12]}…) anchoring study {other}")
        point = dt.datetime.fromisoformat(when)
        early, late = _utc(point - CLOCK_SLACK), _utc(point + CLOCK_SLACK)
        order = db.execute("SELECT study_id, seq, at FROM anchors WHERE coordinator = ? AND "
                           "((seq > ? AND at < ?) OR (seq < ? AND at > ?)) ORDER BY seq DESC LIMIT 1",
                           (coordinator, seq, early, seq, late)).fetchone()
        if order is not None:
            other, at_seq, other_at = order
            raise refuse(f"written {when}, while this node saw entry {at_seq} (study {other}) written {other_at}: "
                         "positions and times went out of order")

    def anchors(self) -> list[Anchor]:
        """Every audit anchor this node has seen, by position: what ``tillit audit verify --anchor`` takes."""
        with self._connect() as db:
            rows = db.execute("SELECT coordinator, study_id, seq, hash, at FROM anchors ORDER BY coordinator, seq"
                              ).fetchall()
        return [Anchor(c, s, q, h, a) for c, s, q, h, a in rows]

    def noisy_count(self, study_id: str, dataset: str) -> float | None:
        with self._connect() as db:
            row = db.execute("SELECT noisy_count FROM releases WHERE study_id = ? AND dataset = ? AND round = 1",
                             (study_id, dataset)).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def charges(self) -> list[tuple[str, str, PrivacyLoss, str]]:
        with self._connect() as db:
            rows = db.execute("SELECT study_id, dataset, units, charged_at FROM charges ORDER BY charged_at").fetchall()
        return [(s, d, PrivacyLoss(u), t) for s, d, u, t in rows]
