"""Tampering done directly in the coordinator's database: the database refuses what it can; `tillit audit verify`
recomputes the ledger, budgets, caps, principals, studies and node keys from the signed chain and names every row
that disagrees; a cut tail shows against a public key kept apart from the state directory or against an anchor a
node recorded — and a node that saw the old head refuses a new study anchored on the cut chain."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from common.errors import RefusalCode, StudyRefused
from federation.privacy import RHO_UNITS_PER_RHO
from federation.signing import SigningKey, make_signing_key, public_key_pem, sign_bytes, sign_spec
from federation.spec import AuditAnchor, StudySpec, parse_spec
from nodes.agent import NodeAgent
from nodes.config import load_node_config, write_node_config
from nodes.ledger import NodeLedger
from tests.conftest import Municipality
from tests.coordinator.conftest import World, make_world
from tillit.cli import main
from tillit.local import NodeSetup, node_config

APPROVE = {"reason": "fits the service plan"}
DATASET = "espoo/health_care"


@pytest.fixture
def any_world(tmp_path: Path, database_url: str | None) -> Iterator[World]:
    yield from make_world(tmp_path / "coordinator", database_url)


@pytest.fixture
def key_apart(tmp_path: Path) -> Iterator[World]:
    """A coordinator whose signing key is kept outside its state directory."""
    yield from make_world(tmp_path / "coordinator", signing_key=tmp_path / "vault" / "study-signing.key")


def _history(world: World, studies: tuple[str, ...] = ("study-1", "study-2")) -> Path:
    """A budget for three studies, a municipality cap, and ``studies`` drafted and approved (so charged)."""
    preview = world.client.post("/v1/studies/preview", json=world.draft("probe"), headers=world.headers("analyst"))
    cost = int(preview.json()["per_dataset"][DATASET]["rho_units"])
    answer = world.client.put(f"/v1/budgets/{DATASET}/2024", json={"rho": 3 * cost / RHO_UNITS_PER_RHO},
                              headers=world.headers("officer"))
    assert answer.status_code == 200, answer.text
    assert world.client.put("/v1/caps/espoo/2024", json={"epsilon": 10.0},
                            headers=world.headers("admin")).status_code == 200
    for study in studies:
        drafted = world.client.post("/v1/studies", json=world.draft(study), headers=world.headers("analyst"))
        assert drafted.status_code == 201, drafted.text
        approved = world.client.post(f"/v1/studies/{study}/approve", json=APPROVE, headers=world.headers("officer"))
        assert approved.json()["status"] == "approved", approved.text
    return world.coordinator.settings.state_dir


def _database(world: World) -> sqlite3.Connection:
    world.coordinator.db.dispose()
    return sqlite3.connect(world.coordinator.settings.state_dir / "coordinator.sqlite", isolation_level=None)


def _drop_triggers(db: sqlite3.Connection) -> None:
    """What someone with write access to the database file does first."""
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")


def _verify(capsys: pytest.CaptureFixture[str], state: Path, *options: str) -> tuple[int, list[str], str]:
    code = main(["audit", "verify", "--state", str(state), *options])
    out, err = capsys.readouterr()
    return code, [line.removeprefix("TAMPERED: ") for line in out.splitlines() if line.startswith("TAMPERED: ")], err


def _anchor_of(world: World, study: str) -> AuditAnchor:
    answer = world.client.get("/v1/register").json()
    assert any(s["id"] == study for s in answer["studies"])
    with world.coordinator.db.transaction() as session:
        spec = session.execute(text("SELECT spec FROM studies WHERE id = :id"), {"id": study}).scalar_one()
    anchor = StudySpec.model_validate_json(spec).audit_anchor
    assert anchor is not None
    return anchor


def _cut_tail_before(db: sqlite3.Connection, study: str) -> int:
    """Cut the log back to just before ``study`` was drafted, erase the study and its charge, and point the chain
    head at the new last entry — a thorough attacker with the triggers dropped. Returns the new last entry."""
    _drop_triggers(db)
    cut = db.execute("SELECT MIN(seq) FROM audit_log WHERE action = 'study.created' AND subject = ?",
                     (study,)).fetchone()[0]
    db.execute("DELETE FROM audit_log WHERE seq >= ?", (cut,))
    for table, column in (("ledger", "study_id"), ("approvals", "study_id"), ("studies", "id")):
        db.execute(f"DELETE FROM {table} WHERE {column} = ?", (study,))
    last, digest = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    db.execute("UPDATE chain_head SET seq = ?, hash = ?", (last, digest))
    return int(last)


def test_an_untouched_database_agrees_with_its_chain(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare
    state = _history(world)
    # Execute
    code, problems, _ = _verify(capsys, state)
    report = world.client.get("/v1/audit/verify", headers=world.headers("admin")).json()
    # Assert
    assert (code, problems) == (0, [])
    assert report["intact"] and report["problems"] == []


#: a change made with the triggers dropped (and checks off), and the line `audit verify` names it with
FORCED = {
    "ledger row replaced": (["INSERT OR REPLACE INTO ledger (id, dataset, period, study_id, units, created_at) "
                             "SELECT id, dataset, period, study_id, 1, created_at FROM ledger "
                             "WHERE study_id = 'study-2'"],
                            ["ledger row 2 (espoo/health_care 2024, study study-2): charge 1.0e-09 in the table, ",
                             "ledger balance espoo/health_care 2024: spent "]),
    "negative charge": (["INSERT INTO ledger (dataset, period, study_id, units, created_at) VALUES "
                         "('espoo/health_care', '2024', 'forged', -99999999, '2026-01-01')"],
                        ["ledger row 3 (espoo/health_care 2024, study forged): not in the audit chain",
                         "ledger balance espoo/health_care 2024: spent "]),
    "principal role": (["UPDATE principals SET role = 'admin' WHERE name = 'analyst'"],
                       ["principal analyst: role admin in the table, analyst in the chain"]),
    "principal token": (["UPDATE principals SET token_hash = '" + hashlib.sha256(b"tlt_mine").hexdigest()
                         + "' WHERE name = 'officer'"],
                        ["principal officer: the token hash in the table is not the one in the chain"]),
    "principal datasets": (["UPDATE principals SET datasets = '[\"espoo/health_care\", \"vantaa/health_care\"]' "
                            "WHERE name = 'officer'"],
                           ["principal officer: datasets espoo/health_care, vantaa/health_care in the table, "
                            "espoo/health_care in the chain"]),
    "budget cap raised": (["UPDATE budgets SET cap_units = cap_units * 2"],
                          ["budget espoo/health_care@2024: cap "]),
    "budget row added": (["INSERT INTO budgets (dataset, period, cap_units, delta, set_by, set_at) VALUES "
                          "('espoo/health_care', '2024', 99000000000, 1e-6, 'officer', '2026-01-01')"],
                         ["budget espoo/health_care@2024: cap 9.9e+01 in the table, "]),
    "municipality cap raised": (["UPDATE municipality_caps SET cap_units = cap_units + 1"],
                                ["municipality cap espoo@2024: cap "]),
    "study status": (["UPDATE studies SET status = 'released' WHERE id = 'study-1'"],
                     ["study study-1: status released in the table, approved in the chain"]),
    "study spec": (["UPDATE studies SET spec = replace(spec, '\"epsilon\":1.0', '\"epsilon\":0.5') "
                    "WHERE id = 'study-1'"],
                   ["study study-1: its spec in the table is not the one in the chain"]),
    "node key": (["UPDATE nodes SET public_key = 'ssh-ed25519 AAAAforged' WHERE dataset = 'espoo/health_care'"],
                 ["node espoo/health_care: its key in the table is not the one enrolled in the chain"]),
    "tail cut, rows left": (["DELETE FROM audit_log WHERE seq >= (SELECT MIN(seq) FROM audit_log WHERE "
                             "action = 'study.created' AND subject = 'study-2')",
                             "UPDATE chain_head SET seq = (SELECT MAX(seq) FROM audit_log), "
                             "hash = (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1)"],
                            ["study study-2: its signed spec is anchored at audit entry ",
                             "ledger row 2 (espoo/health_care 2024, study study-2): not in the audit chain",
                             "study study-2: in the table, not in the audit chain"]),
}


@pytest.mark.parametrize("kind", sorted(FORCED))
def test_each_kind_of_tampering_is_named(world: World, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: a real history; then the change, forced past the triggers and checks
    state = _history(world)
    db = _database(world)
    _drop_triggers(db)
    db.execute("PRAGMA ignore_check_constraints = ON")
    statements, expected = FORCED[kind]
    for statement in statements:
        db.execute(statement)
    db.close()
    # Execute
    code, problems, err = _verify(capsys, state)
    served = world.client.get("/v1/audit/verify", headers=world.headers("admin"))
    # Assert: exit 1 with one stderr line, one stdout line per problem, each expected problem named; the HTTP
    # route answers the same problems
    assert code == 1 and err.count("\n") == 1 and "audit log tampered" in err
    for words in expected:
        assert any(line.startswith(words) for line in problems), (words, problems)
    assert served.status_code == 200 and served.json()["problems"] == problems


@pytest.mark.parametrize("statement", [
    "INSERT OR REPLACE INTO ledger (id, dataset, period, study_id, units, created_at) "
    "SELECT id, dataset, period, study_id, 0, created_at FROM ledger WHERE study_id = 'study-2'",
    "REPLACE INTO ledger (dataset, period, study_id, units, created_at) "
    "SELECT dataset, period, study_id, 0, created_at FROM ledger WHERE study_id = 'study-2'",
    "REPLACE INTO audit_log SELECT * FROM audit_log WHERE seq = 3",
    "INSERT OR REPLACE INTO principals (id, name, role, token_hash, datasets, created_at) "
    "SELECT id, name, 'admin', token_hash, datasets, created_at FROM principals WHERE name = 'analyst'",
    "REPLACE INTO budgets SELECT id, dataset, period, cap_units * 2, delta, set_by, set_at FROM budgets",
    "REPLACE INTO chain_head VALUES (1, 3, '" + "0" * 64 + "')",
])
def test_replace_is_refused_by_sqlite(world: World, statement: str) -> None:
    # Prepare
    _history(world)
    db = _database(world)
    before = db.execute("SELECT COUNT(*), SUM(units) FROM ledger").fetchone()
    # Execute / Assert: SQLite's REPLACE deletes without firing DELETE triggers; a BEFORE INSERT trigger refuses it
    with pytest.raises(sqlite3.IntegrityError, match="append-only|only revoked|one entry forward"):
        db.execute(statement)
    assert db.execute("SELECT COUNT(*), SUM(units) FROM ledger").fetchone() == before


def _refusals(dialect: str) -> list[tuple[str, str]]:
    """(statement, words of the refusal) for every path the coordinator never takes."""
    both = [
        ("UPDATE ledger SET units = 0", "append-only"),
        ("DELETE FROM ledger", "append-only"),
        ("INSERT INTO ledger (dataset, period, study_id, units, created_at) VALUES "
         "('espoo/health_care', '2024', 'forged', -99999999, '2026-01-01')", "ledger_units_not_negative"),
        ("UPDATE audit_log SET payload = '{}' WHERE seq = 3", "append-only"),
        ("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)", "append-only"),
        ("UPDATE budgets SET cap_units = cap_units * 2", "append-only"),
        ("DELETE FROM budgets", "append-only"),
        ("INSERT INTO budgets (dataset, period, cap_units, delta, set_by, set_at) VALUES "
         "('espoo/health_care', '2024', -1, 1e-6, 'officer', '2026-01-01')", "budgets_cap_not_negative"),
        ("UPDATE municipality_caps SET cap_units = cap_units * 2", "append-only"),
        ("INSERT INTO municipality_caps (municipality, period, cap_units, delta, set_by, set_at) VALUES "
         "('espoo', '2024', -1, 1e-6, 'admin', '2026-01-01')", "municipality_caps_cap_not_negative"),
        ("UPDATE principals SET role = 'admin' WHERE name = 'analyst'", "only revoked"),
        ("UPDATE principals SET token_hash = 'x' WHERE name = 'officer'", "only revoked"),
        ("UPDATE principals SET datasets = '[]' WHERE name = 'officer'", "only revoked"),
        ("DELETE FROM principals WHERE name = 'analyst'", "only revoked"),
        ("UPDATE chain_head SET seq = seq - 1", "one entry forward"),
        ("UPDATE chain_head SET seq = seq + 2", "one entry forward"),
        ("DELETE FROM chain_head", "one entry forward"),
    ]
    if dialect == "postgresql":
        return [*both,
                ("INSERT INTO ledger (id, dataset, period, study_id, units, created_at) SELECT id, dataset, period, "
                 "study_id, 0, created_at FROM ledger ON CONFLICT (id) DO UPDATE SET units = 0", "append-only"),
                ("TRUNCATE ledger", "append-only"), ("TRUNCATE audit_log", "append-only"),
                ("TRUNCATE budgets", "append-only"), ("TRUNCATE principals CASCADE", "only revoked"),
                ("TRUNCATE chain_head", "one entry forward")]
    return [*both, ("REPLACE INTO ledger (dataset, period, study_id, units, created_at) "
                    "SELECT dataset, period, study_id, 0, created_at FROM ledger", "append-only")]


def test_the_database_refuses_what_the_coordinator_never_does(any_world: World) -> None:
    # Prepare: a charge, a budget, a cap, principals and the audit chain to tamper with
    world = any_world
    _history(world, ("study-1",))
    dialect = world.coordinator.db.engine.dialect.name
    # Execute / Assert: each statement fails in the database itself, naming the rule
    for statement, words in _refusals(dialect):
        with pytest.raises(DBAPIError, match=words):
            with world.coordinator.db.transaction() as session:
                session.execute(text(statement))
    # a revocation is the one change a principal may take, once
    with world.coordinator.db.transaction() as session:
        session.execute(text("UPDATE principals SET revoked_at = '2026-01-01' WHERE name = 'vantaa-node'"))
    with pytest.raises(DBAPIError, match="only revoked"):
        with world.coordinator.db.transaction() as session:
            session.execute(text("UPDATE principals SET revoked_at = NULL WHERE name = 'vantaa-node'"))
    ledger = world.client.get("/v1/ledger", headers=world.headers("officer")).json()
    assert [e["study_id"] for e in ledger["entries"]] == ["study-1"]


def test_the_coordinator_stops_writing_when_its_chain_head_was_moved(world: World) -> None:
    # Prepare: the chain head moved back one entry behind the triggers' back
    _history(world, ("study-1",))
    db = _database(world)
    _drop_triggers(db)
    db.execute("UPDATE chain_head SET seq = seq - 1, "
               "hash = (SELECT prev_hash FROM audit_log ORDER BY seq DESC LIMIT 1)")
    db.close()
    # Execute
    answer = world.client.put(f"/v1/budgets/{DATASET}/2024", json={"epsilon": 9.0}, headers=world.headers("officer"))
    # Assert: 409, nothing written
    assert answer.status_code == 409 and "the log was cut or rewritten" in answer.json()["detail"]
    assert world.client.get("/v1/budgets", headers=world.headers("officer")).json()[0]["cap"]["epsilon"] < 9


def test_a_cut_tail_re_signed_with_the_state_directorys_key_shows_against_the_key_kept_apart(
        key_apart: World, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: the signing key is kept outside the state directory; two studies are approved
    world = key_apart
    vault = world.coordinator.settings.signing_key_path
    state = _history(world)
    assert not (state / "keys" / "study-signing.key").exists()
    # the attacker of the state directory and database cuts study-2 out, makes a key of their own where the
    # default one lives and re-signs every entry with it
    db = _database(world)
    _cut_tail_before(db, "study-2")
    forger = make_signing_key(state / "keys" / "study-signing.key")
    for seq, digest in db.execute("SELECT seq, hash FROM audit_log").fetchall():
        db.execute("UPDATE audit_log SET signature = ? WHERE seq = ?", (sign_bytes(forger, digest.encode()), seq))
    db.close()
    # Execute
    with_state_key = _verify(capsys, state)
    with_kept_key = _verify(capsys, state, "--public-key", str(vault.with_suffix(".pub")))
    # Assert: the state directory's own key vouches for the forgery; the key kept apart does not
    assert with_state_key[:2] == (0, [])
    code, problems, _ = with_kept_key
    assert code == 1
    assert "entry 1 inserted: not signed by the coordinator's key" in problems


def test_a_cut_tail_shows_against_an_anchor_a_node_recorded(world: World, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: a node ran study-2 and recorded its anchor; then the tail is cut back to before study-2, its rows
    # erased and the head rewritten — the remaining prefix keeps its valid signatures
    state = _history(world)
    node = NodeLedger(tmp_path / "node" / "ledger.sqlite")
    node.record_anchor(DATASET, "coordinator", "study-2", _anchor_of(world, "study-2"))
    last = _cut_tail_before(_database(world), "study-2")
    recorded = [f"{a.seq}:{a.hash}" for a in node.anchors()]
    # Execute
    alone = _verify(capsys, state)
    anchored = _verify(capsys, state, *(f"--anchor={a}" for a in recorded))
    # Assert: the database alone is consistent; the node's anchor shows the cut
    assert alone[:2] == (0, [])
    seq, digest = recorded[0].split(":")
    assert anchored[0] == 1
    assert anchored[1] == [f"anchor {seq} ({digest[:12]}…): the log ends at entry {last}: its tail was cut"]


def test_a_new_study_on_a_cut_chain_is_refused_by_a_node_that_saw_the_old_head(world: World, tmp_path: Path) -> None:
    # Prepare: the node saw study-2's anchor; the tail is cut back to before study-2, and the coordinator, none the
    # wiser, approves a new study on the regrown chain
    _history(world)
    node = NodeLedger(tmp_path / "node" / "ledger.sqlite")
    old = _anchor_of(world, "study-2")
    node.record_anchor(DATASET, "coordinator", "study-2", old)
    _cut_tail_before(_database(world), "study-2")
    drafted = world.client.post("/v1/studies", json=world.draft("study-3"), headers=world.headers("analyst"))
    assert drafted.status_code == 201
    approved = world.client.post("/v1/studies/study-3/approve", json=APPROVE, headers=world.headers("officer"))
    assert approved.json()["status"] == "approved"
    new = _anchor_of(world, "study-3")
    # Execute / Assert: study-3 is anchored where study-2 was, with another hash: refused, and not recorded
    assert new.seq == old.seq and new.hash != old.hash
    with pytest.raises(StudyRefused, match="rewritten or cut") as refused:
        node.record_anchor(DATASET, "coordinator", "study-3", new)
    assert refused.value.reason_code == RefusalCode.ANCHOR_BACKWARDS
    assert [a.study_id for a in node.anchors()] == ["study-2"]


# -- the node's rule ---------------------------------------------------------------------------------------------

_T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def _at(seq: int, minutes: float, mark: str = "a") -> AuditAnchor:
    return AuditAnchor(seq=seq, hash=hashlib.sha256(f"{seq}{mark}".encode()).hexdigest(),
                       at=_T0 + dt.timedelta(minutes=minutes))


@pytest.mark.parametrize(("study", "anchor", "accepted"), [
    ("s-new", _at(30, 30), True),               # later in position and time
    ("s-late", _at(5, 5), True),                # approved before s20, run after it: lower position, earlier time
    ("s10", _at(10, 10), True),                 # the same study, the same anchor again (every round)
    ("s10", _at(11, 11), False),                # the same study, another anchor: signed again on another chain
    ("s-fork", _at(20, 40, "b"), False),        # a position seen before with another hash
    ("s-cut", _at(15, 45), False),              # below a seen position but written after it: cut and regrown
    ("s-clock", _at(15, 20.5), True),           # ... by less than the clock slack
    ("s-early", _at(25, 1), False),             # above a seen position but written before it
])
def test_a_node_refuses_an_anchor_that_goes_backwards(tmp_path: Path, study: str, anchor: AuditAnchor,
                                                      accepted: bool) -> None:
    # Prepare: the node saw studies anchored at entries 10 and 20
    ledger = NodeLedger(tmp_path / "ledger.sqlite")
    ledger.record_anchor(DATASET, "coordinator", "s10", _at(10, 10))
    ledger.record_anchor(DATASET, "coordinator", "s20", _at(20, 20))
    # Execute / Assert
    if accepted:
        ledger.record_anchor(DATASET, "coordinator", study, anchor)
        assert (anchor.seq, anchor.hash) in {(a.seq, a.hash) for a in ledger.anchors()}
    else:
        with pytest.raises(StudyRefused, match=f"{DATASET}: study {study} is anchored") as refused:
            ledger.record_anchor(DATASET, "coordinator", study, anchor)
        assert refused.value.reason_code == RefusalCode.ANCHOR_BACKWARDS
        assert len(ledger.anchors()) == 2


def test_anchors_of_another_coordinator_key_are_not_compared(tmp_path: Path) -> None:
    ledger = NodeLedger(tmp_path / "ledger.sqlite")
    ledger.record_anchor(DATASET, "old-coordinator", "s20", _at(20, 20))
    ledger.record_anchor(DATASET, "new-coordinator", "t1", _at(20, 90, "b"))
    assert len(ledger.anchors()) == 2


_KEY = SigningKey(Ed25519PrivateKey.generate())


def _agent(tmp_path: Path, municipality: Municipality) -> NodeAgent:
    data = tmp_path / "health_care.parquet"
    shutil.copy(municipality.silo("health_care"), data)
    (tmp_path / "coordinator.pub").write_bytes(public_key_pem(_KEY.public))
    path = write_node_config(tmp_path / "node" / "node.toml", node_config(
        NodeSetup(DATASET, "health_care", data, 5.0), tmp_path / "node", "127.0.0.1:1", None, 9999,
        tmp_path / "coordinator.pub", insecure=True))
    agent = NodeAgent(load_node_config(path))
    agent.initialise()
    return agent


def _spec(study_id: str, anchor: AuditAnchor | None) -> StudySpec:
    spec = parse_spec({"study_id": study_id, "task": "dp_table", "contract": "health_care", "datasets": [DATASET],
                       "privacy": {"epsilon": 0.5, "delta": 1e-6}, "table": {"group_by": ["service_status"]}})
    return sign_spec(spec.model_copy(update={"audit_anchor": anchor}), _KEY)


def test_the_node_agent_refuses_a_backwards_anchor_before_any_charge_and_takes_specs_without_one(
        tmp_path: Path, municipality: Municipality) -> None:
    # Prepare: the node released a study anchored at entry 20
    agent = _agent(tmp_path, municipality)
    assert isinstance(agent.table(_spec("first", _at(20, 20))), np.ndarray)
    # Execute / Assert: a study anchored at entry 20 with another hash is refused (4304) and not charged
    with pytest.raises(StudyRefused, match="rewritten or cut") as refused:
        agent.table(_spec("second", _at(20, 30, "b")))
    assert refused.value.reason_code == RefusalCode.ANCHOR_BACKWARDS
    assert [c[0] for c in agent.ledger.charges()] == ["first"]
    # a spec with no coordinator behind it (`tillit federation run`) carries no anchor and is taken
    agent.prepare(_spec("local", None))
