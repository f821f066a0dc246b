"""The node's own privacy ledger: a local cap per dataset, and every charge and release.

Defence in depth: whatever the coordinator says, a node refuses a study that would take its
dataset past the cap its own privacy officer set. Amounts are exact integers of 1e-9 ρ. A charge
is committed (SQLite, synchronous, ``BEGIN IMMEDIATE``) before the node releases anything, so a
crash after the charge loses budget, never privacy. Charges are idempotent per study and dataset;
each release (round) of a study is recorded once, so a study cannot draw fresh noise twice for the
same round.
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

__all__ = ["Charge", "NodeLedger"]

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

    def noisy_count(self, study_id: str, dataset: str) -> float | None:
        with self._connect() as db:
            row = db.execute("SELECT noisy_count FROM releases WHERE study_id = ? AND dataset = ? AND round = 1",
                             (study_id, dataset)).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def charges(self) -> list[tuple[str, str, PrivacyLoss, str]]:
        with self._connect() as db:
            rows = db.execute("SELECT study_id, dataset, units, charged_at FROM charges ORDER BY charged_at").fetchall()
        return [(s, d, PrivacyLoss(u), t) for s, d, u, t in rows]
