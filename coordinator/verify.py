"""``tillit audit verify``: the audit chain, the anchors kept outside the database, and every table that decides
access or budget recomputed from the chain.

Replaying the chain's authentic entries (content matching its hash, signature valid) gives the state the
coordinator's decisions rest on: each ledger charge and so each balance per dataset and period, every budget
and municipality cap in force, each principal's role, datasets, token and revocation, each study's status,
spec and cost, each enrolled node's key. :func:`verify` names every row that disagrees — what someone with
write access to the database changed behind the coordinator's back — one line per problem. Amounts are ρ.

Entries written before the payloads carried whole rows (revision 0001) are read from their subject and action;
what they never carried (a token digest, a study's cost) is not compared.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from coordinator.audit import ChainReport, verify_chain
from coordinator.enrollment import key_fingerprint
from coordinator.models import AuditEntry, Budget, LedgerEntry, MunicipalityCap, Node, Principal, Study
from coordinator.principals import token_digest
from federation.privacy import RHO_UNITS_PER_RHO
from federation.spec import StudySpec

__all__ = ["ChainState", "replay", "table_problems", "verify"]

#: what a study's status was after an entry written before entries carried ``status`` (revision 0001)
_LEGACY_STATUS = {"study.created": "pending", "study.rejected": "rejected", "study.signed": "approved",
                  "study.launching": "launching", "study.launch_failed": "approved",
                  "study.launch_interrupted": "approved", "study.running": "running", "study.released": "released",
                  "study.failed": "failed"}


@dataclass
class PrincipalState:
    role: str
    datasets: list[str]
    #: ``None`` for a principal created before the chain carried it
    token_digest: str | None
    revoked: bool = False


@dataclass
class StudyState:
    #: (not ``status``: only :mod:`coordinator.lifecycle` assigns a study's status, and a test checks it)
    last_status: str | None = None
    spec_sha256: str | None = None
    cost: dict[str, int] | None = None


@dataclass
class ChainState:
    """The tables as the chain says they are."""

    #: (dataset, period, study) → units of 1e-9 ρ
    charges: dict[tuple[str, str, str], int] = field(default_factory=dict)
    #: (dataset, period) → (cap units, δ) of the latest setting
    budgets: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    #: (municipality, period) → (cap units, δ)
    caps: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    principals: dict[str, PrincipalState] = field(default_factory=dict)
    studies: dict[str, StudyState] = field(default_factory=dict)
    #: dataset → SHA-256 of its node's enrolled key
    node_keys: dict[str, str] = field(default_factory=dict)


def verify(session: Session, key: Ed25519PublicKey, anchors: Sequence[tuple[int, str]] = ()) -> ChainReport:
    """The chain's own problems, the anchors it no longer passes through, then every table row that disagrees
    with what its authentic entries say."""
    report = verify_chain(session, key, anchors)
    hashes: dict[int, str] = {row[0]: row[1] for row in session.execute(select(AuditEntry.seq, AuditEntry.hash))}
    report.problems.extend(table_problems(session, replay(report.trusted), hashes))
    return report


def _where(entry: AuditEntry, payload: dict[str, Any], key: str) -> tuple[str, str]:
    """(dataset or municipality, period): from the payload, or from a subject ``<what>@<period>``."""
    subject, _, period = entry.subject.rpartition("@")
    return str(payload.get(key, subject)), str(payload.get("period", period))


def replay(entries: Iterable[AuditEntry]) -> ChainState:
    """The state the entries, in order, leave behind."""
    state = ChainState()
    for entry in entries:
        try:
            payload = json.loads(entry.payload)
        except json.JSONDecodeError:
            continue
        if not isinstance(payload, dict):
            continue
        action = entry.action
        if action == "ledger.charge" and "rho_units" in payload:
            dataset, period = _where(entry, payload, "dataset")
            state.charges[(dataset, period, str(payload["study_id"]))] = int(payload["rho_units"])
        elif action in ("budget.set", "cap.set") and "rho_units" in payload:
            target = state.budgets if action == "budget.set" else state.caps
            target[_where(entry, payload, "dataset" if action == "budget.set" else "municipality")] = (
                int(payload["rho_units"]), float(payload["delta"]))
        elif action == "principal.created":
            state.principals[entry.subject] = PrincipalState(str(payload.get("role")),
                                                             sorted(payload.get("datasets", [])),
                                                             payload.get("token_digest"))
        elif action == "principal.revoked" and entry.subject in state.principals:
            state.principals[entry.subject].revoked = True
        elif action == "node.enrolled":
            state.node_keys[entry.subject] = str(payload.get("public_key_sha256"))
        elif action.startswith("study."):
            study = state.studies.setdefault(entry.subject, StudyState())
            if action == "study.created":
                study.cost = payload.get("cost")
            if action in ("study.created", "study.signed"):
                study.spec_sha256 = payload.get("spec_sha256")
            status = payload.get("status") or _LEGACY_STATUS.get(action)
            if status:
                study.last_status = str(status)
    return state


def _rho(table: int, chain: int) -> tuple[str, str]:
    """Both amounts as ρ, with as many digits as it takes to tell them apart."""
    for digits in range(1, 10):
        a, b = f"{table / RHO_UNITS_PER_RHO:.{digits}e}", f"{chain / RHO_UNITS_PER_RHO:.{digits}e}"
        if a != b:
            return a, b
    return f"{table} units", f"{chain} units"


def table_problems(session: Session, state: ChainState, hashes: dict[int, str]) -> list[str]:
    """Every row of the ledger, budgets, caps, principals, studies and nodes that disagrees with ``state``;
    ``hashes`` (the log's entries by position) are what the studies' signed anchors must still point at."""
    budgets = {(r.dataset, r.period): (r.cap_units, r.delta)
               for r in session.execute(select(Budget).order_by(Budget.id)).scalars()}
    caps = {(r.municipality, r.period): (r.cap_units, r.delta)
            for r in session.execute(select(MunicipalityCap).order_by(MunicipalityCap.id)).scalars()}
    return [*_ledger(session, state), *_caps("budget", budgets, state.budgets),
            *_caps("municipality cap", caps, state.caps), *_principals(session, state),
            *_studies(session, state, hashes), *_nodes(session, state)]


def _ledger(session: Session, state: ChainState) -> list[str]:
    found: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    spent: dict[tuple[str, str], int] = defaultdict(int)
    for row in session.execute(select(LedgerEntry).order_by(LedgerEntry.id)).scalars():
        key = (row.dataset, row.period, row.study_id)
        spent[(row.dataset, row.period)] += row.units
        where = f"ledger row {row.id} ({row.dataset} {row.period}, study {row.study_id})"
        if key not in state.charges or key in seen:
            found.append(f"{where}: not in the audit chain")
        elif state.charges[key] != row.units:
            table, chain = _rho(row.units, state.charges[key])
            found.append(f"{where}: charge {table} in the table, {chain} in the chain")
        seen.add(key)
    charged: dict[tuple[str, str], int] = defaultdict(int)
    for (dataset, period, study), units in sorted(state.charges.items()):
        charged[(dataset, period)] += units
        if (dataset, period, study) not in seen:
            found.append(f"ledger charge {dataset} {period}, study {study}: in the audit chain, missing from the table")
    for dataset, period in sorted(set(spent) | set(charged)):
        if spent[(dataset, period)] != charged[(dataset, period)]:
            table, chain = _rho(spent[(dataset, period)], charged[(dataset, period)])
            found.append(f"ledger balance {dataset} {period}: spent {table} in the table, {chain} in the chain")
    return found


def _caps(label: str, table: dict[tuple[str, str], tuple[int, float]],
          chain: dict[tuple[str, str], tuple[int, float]]) -> list[str]:
    """The setting in force (the table's latest row) per subject and period, against the chain's latest."""
    found = []
    for subject, period in sorted(set(table) | set(chain)):
        name, here, there = f"{label} {subject}@{period}", table.get((subject, period)), chain.get((subject, period))
        if there is None:
            found.append(f"{name}: in the table, not in the audit chain")
        elif here is None:
            found.append(f"{name}: in the audit chain (cap {there[0] / RHO_UNITS_PER_RHO:.2e}), missing from the table")
        else:
            if here[0] != there[0]:
                a, b = _rho(here[0], there[0])
                found.append(f"{name}: cap {a} in the table, {b} in the chain")
            if here[1] != there[1]:
                found.append(f"{name}: delta {here[1]:g} in the table, {there[1]:g} in the chain")
    return found


def _principals(session: Session, state: ChainState) -> list[str]:
    rows = {p.name: p for p in session.execute(select(Principal)).scalars()}
    found = []
    for name in sorted(set(rows) | set(state.principals)):
        row, chain = rows.get(name), state.principals.get(name)
        where = f"principal {name}"
        if chain is None:
            found.append(f"{where}: in the table, not in the audit chain")
            continue
        if row is None:
            found.append(f"{where}: in the audit chain (role {chain.role}), missing from the table")
            continue
        if row.role != chain.role:
            found.append(f"{where}: role {row.role} in the table, {chain.role} in the chain")
        datasets = sorted(json.loads(row.datasets))
        if datasets != chain.datasets:
            found.append(f"{where}: datasets {', '.join(datasets) or 'none'} in the table, "
                         f"{', '.join(chain.datasets) or 'none'} in the chain")
        if chain.token_digest is not None and token_digest(row.token_hash) != chain.token_digest:
            found.append(f"{where}: the token hash in the table is not the one in the chain")
        if (row.revoked_at is not None) != chain.revoked:
            state_of = {True: "revoked", False: "active"}
            found.append(f"{where}: {state_of[row.revoked_at is not None]} in the table, "
                         f"{state_of[chain.revoked]} in the chain")
    return found


def _studies(session: Session, state: ChainState, hashes: dict[int, str]) -> list[str]:
    rows = {s.id: s for s in session.execute(select(Study)).scalars()}
    last = max(hashes, default=0)
    found = []
    for study_id in sorted(set(rows) | {s for s, c in state.studies.items() if c.last_status is not None}):
        row, chain = rows.get(study_id), state.studies.get(study_id, StudyState())
        where = f"study {study_id}"
        if row is None:
            found.append(f"{where}: in the audit chain (status {chain.last_status}), missing from the table")
            continue
        try:
            spec: StudySpec | None = StudySpec.model_validate_json(row.spec)
        except ValidationError:
            spec = None
            found.append(f"{where}: its spec in the table is not a study spec")
        anchor = spec.audit_anchor if spec is not None else None
        if anchor is not None and anchor.seq > last:
            found.append(f"{where}: its signed spec is anchored at audit entry {anchor.seq}, after the log's last "
                         f"entry {last}: the log's tail was cut")
        elif anchor is not None and hashes.get(anchor.seq) != anchor.hash:
            found.append(f"{where}: its signed spec is anchored at audit entry {anchor.seq}, which the log holds "
                         "with another hash: the log was rewritten")
        if chain.last_status is None:
            found.append(f"{where}: in the table, not in the audit chain")
            continue
        if row.status != chain.last_status:
            found.append(f"{where}: status {row.status} in the table, {chain.last_status} in the chain")
        if chain.cost is not None and json.loads(row.cost) != chain.cost:
            found.append(f"{where}: its cost in the table is not the one in the chain")
        if spec is not None and chain.spec_sha256 is not None \
                and hashlib.sha256(spec.canonical_json().encode()).hexdigest() != chain.spec_sha256:
            found.append(f"{where}: its spec in the table is not the one in the chain")
    return found


def _nodes(session: Session, state: ChainState) -> list[str]:
    found = []
    for node in session.execute(select(Node).order_by(Node.dataset)).scalars():
        chain = state.node_keys.get(node.dataset)
        if chain is None:
            found.append(f"node {node.dataset}: in the table, not in the audit chain")
        elif key_fingerprint(node.public_key) != chain:
            found.append(f"node {node.dataset}: its key in the table is not the one enrolled in the chain")
    return found
