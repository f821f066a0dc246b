"""`tillit audit verify` finds each kind of tampering done directly in the database, and says which entry."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from coordinator.audit import entry_hash
from tests.coordinator.conftest import World
from tillit.cli import main

TAMPERING = {
    "edited": ["UPDATE audit_log SET payload = '{\"rho_units\":1}' WHERE seq = 3"],
    "deleted": ["DELETE FROM audit_log WHERE seq = 4"],
    "reordered": ["UPDATE audit_log SET seq = -1 WHERE seq = 3", "UPDATE audit_log SET seq = 3 WHERE seq = 4",
                  "UPDATE audit_log SET seq = 4 WHERE seq = -1"],
    "truncated": ["DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)"],
}
EXPECTED = {
    "edited": ["entry 3 edited"],
    "deleted": ["entry 4 deleted"],
    "reordered": ["entry 3 reordered: it was written as entry 4", "entry 4 reordered: it was written as entry 3"],
    "truncated": ["deleted: the chain head is entry"],
    "inserted": ["entry 4 inserted: not signed by the coordinator's key"],
}


def _history(world: World) -> Path:
    """A few real entries: principals, enrollments, a budget, a study and its approval."""
    world.client.put("/v1/budgets/espoo/health_care/2024", json={"epsilon": 3.0}, headers=world.headers("officer"))
    world.client.post("/v1/studies", json=world.draft("audited"), headers=world.headers("analyst"))
    world.client.post("/v1/studies/audited/approve", json={"reason": "fits the plan"}, headers=world.headers("officer"))
    return world.coordinator.settings.state_dir


def _tamper(state: Path, statements: list[str]) -> None:
    with sqlite3.connect(state / "coordinator.sqlite") as db:
        db.execute("DROP TRIGGER audit_log_no_update")   # what someone with write access to the file would do
        db.execute("DROP TRIGGER audit_log_no_delete")
        for statement in statements:
            db.execute(statement)


def _insert_forged_entry(state: Path, at_seq: int) -> None:
    """Shift entries up and insert one whose hash is computed correctly — only the signature is missing."""
    with sqlite3.connect(state / "coordinator.sqlite") as db:
        db.execute("DROP TRIGGER audit_log_no_update")
        last = db.execute("SELECT MAX(seq) FROM audit_log").fetchone()[0]
        for seq in range(last, at_seq - 1, -1):
            db.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (seq + 1, seq))
        prev = db.execute("SELECT hash FROM audit_log WHERE seq = ?", (at_seq - 1,)).fetchone()[0]
        fields = (at_seq, "2026-01-01T00:00:00.000000+00:00", "officer", "budget.set", "espoo/health_care@2024",
                  '{"rho_units":999999999}', prev)
        db.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (*fields, entry_hash(*fields), "AAAA"))


def test_an_untouched_log_verifies(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    state = _history(world)
    assert main(["audit", "verify", "--state", str(state)]) == 0
    assert "audit log intact" in capsys.readouterr().out


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_tampering_is_found_and_named(world: World, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare
    state = _history(world)
    world.coordinator.db.dispose()
    if kind == "inserted":
        _insert_forged_entry(state, 4)
    else:
        _tamper(state, TAMPERING[kind])
    # Execute
    code = main(["audit", "verify", "--state", str(state)])
    # Assert: exit 1, one stderr line, and each problem named on stdout
    out, err = capsys.readouterr()
    assert code == 1
    assert err.count("\n") == 1 and "audit log tampered" in err
    for words in EXPECTED[kind]:
        assert words in out, out
