"""The public register: every approved study, what it is for, what data it uses and what it cost.

The fields follow the public algorithm registers of Amsterdam (algoritmeregister.amsterdam.nl) and
Helsinki (ai.hel.fi): name, purpose, legal basis, responsible organisation and contact, data
sources and variables, human oversight (who approved), method, privacy safeguards, outputs,
status and dates. No login; nothing that is not already public in the study's approval.
"""

from __future__ import annotations

import html
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from coordinator.lifecycle import LISTED
from coordinator.models import Approval, ChainHead, Study
from federation.privacy import PrivacyLoss, epsilon
from federation.spec import StudySpec

__all__ = ["register_entries", "register_entry", "register_page"]
_OUTPUTS = {"dp_table": ["noisy counts", "tables"], "dp_logreg": ["model coefficients", "aggregate metrics"],
            "cross_sector_counts": ["noisy counts", "2x2 tables of risk factors", "odds and risk ratios",
                                    "ranked factor combinations"]}


def _variables(spec: StudySpec) -> list[str]:
    if spec.cross_sector is not None:
        cross = spec.cross_sector
        factors = ", ".join(
            f"{f.dataset}: moves of {f.moves.state} from one {f.moves.time} to the next" if f.moves is not None
            else f"{f.dataset}: {', '.join(f.columns) if f.columns else 'every risk-factor indicator'}"
            for f in cross.factors)
        served = f"whether a resident has {cross.outcome.column}" if cross.outcome.column else "whether a resident is a client"
        return [f"{cross.cohort.dataset}: who is aged {cross.cohort.min_age}-{cross.cohort.max_age} on "
                f"{cross.cohort.reference_date.isoformat()}", f"{cross.outcome.dataset}: {served}", factors]
    if spec.table is not None:
        if spec.table.transitions is not None:
            t = spec.table.transitions
            return [t.time, t.state, *([t.by] if t.by else [])]
        return list(spec.table.group_by)
    assert spec.model is not None
    return [spec.model.outcome, *spec.model.features]


def _mechanism(spec: StudySpec) -> str:
    if spec.cross_sector is not None:
        return ("Counts across sectors without pooling any record: the population register's node links the "
                "sectors with pseudonyms made for this study only (destroyed afterwards); the outcome is encrypted "
                "(homomorphic encryption) and each other sector's node adds its own values under encryption, so no node "
                "and not the coordinator sees another sector's values or which residents it serves. Every count "
                "gets differential-privacy noise from each node involved before anything is decrypted or published. "
                "Only aggregate counts leave the nodes: no per-resident score, residual or value exists outside the "
                "node that holds it, and none is computed.")
    if spec.model is not None:
        m = spec.model
        return (f"Logistic regression by differentially private gradient descent: {m.rounds} rounds of "
                f"{m.local_steps} local steps; each resident's gradient clipped to norm {m.clipping_norm:g} and "
                "Gaussian noise added at every node on every step; the coordinator averages noisy updates.")
    return ("Counts with Gaussian noise added at every node before anything leaves it; the coordinator sums "
            "the noisy counts and turns them into proportions.")


def register_entries(session: Session) -> dict[str, Any]:
    """The whole register: every approved study, and the audit chain's head (so a cut tail shows)."""
    studies = session.execute(select(Study).where(Study.status.in_([s.value for s in LISTED]))
                              .order_by(Study.created_at)).scalars()
    entries = [register_entry(session, study) for study in studies]
    head = session.get(ChainHead, 1)
    return {"register": "Tillit public study register", "studies": entries,
            "audit_head": {"seq": head.seq if head else 0, "hash": head.hash if head else None}}


def register_entry(session: Session, study: Study) -> dict[str, Any]:
    """What the public register says about one study."""
    spec = StudySpec.model_validate_json(study.spec)
    approvals = session.execute(select(Approval).where(Approval.study_id == study.id)
                                .order_by(Approval.id)).scalars()
    cost = json.loads(study.cost)
    return {
        "id": study.id, "name": study.name, "purpose": study.purpose, "legal_basis": study.legal_basis,
        "responsible_organisation": study.organisation, "contact": study.contact,
        "template": study.template, "status": study.status, "data_period": study.period,
        "datasets": list(spec.datasets), "contract": spec.contract or "several (one per sector)",
        "variables": _variables(spec),
        "privacy_unit": "resident",
        "privacy": {d: {"epsilon": round(epsilon(float(PrivacyLoss(u).rho), spec.privacy.delta), 6),
                        "delta": spec.privacy.delta, "rho": float(PrivacyLoss(u).rho)}
                    for d, u in sorted(cost.items())},
        "mechanism": _mechanism(spec), "output_kinds": _OUTPUTS[spec.task],
        "human_oversight": [{"dataset": a.dataset, "decision": a.decision, "by": a.officer, "at": a.at}
                            for a in approvals],
        "dates": {"drafted": study.created_at, "approved": study.approved_at, "started": study.launched_at,
                  "finished": study.finished_at},
    }


def register_page(document: dict[str, Any]) -> str:
    """A self-contained page (no scripts, no external assets) listing the register."""
    rows = []
    for s in document["studies"]:
        privacy = "<br>".join(f"{html.escape(d)}: ε={p['epsilon']:.3g}, δ={p['delta']:g}"
                              for d, p in s["privacy"].items())
        oversight = "<br>".join(f"{html.escape(a['decision'])}d by {html.escape(a['by'])} ({html.escape(a['dataset'])})"
                                for a in s["human_oversight"])
        cells = [f"<strong>{html.escape(s['name'])}</strong><br><small>{html.escape(s['id'])}</small>",
                 html.escape(s["purpose"]), html.escape(s["legal_basis"]),
                 f"{html.escape(s['responsible_organisation'])}<br>{html.escape(s['contact'])}",
                 "<br>".join(html.escape(d) for d in s["datasets"]) + "<br><small>variables: "
                 + html.escape(", ".join(s["variables"])) + "</small>",
                 f"unit: {html.escape(s['privacy_unit'])}<br>{privacy}<br><small>{html.escape(s['mechanism'])}</small>",
                 html.escape(", ".join(s["output_kinds"])), oversight,
                 f"{html.escape(s['status'])}<br><small>approved {html.escape(str(s['dates']['approved']))}</small>"]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = document["audit_head"]
    empty = '<tr><td colspan="9">No approved studies yet.</td></tr>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tillit — public study register</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #bbb;padding:.4em;vertical-align:top;text-align:left}}th{{background:#eee}}</style></head>
<body><h1>Public study register</h1>
<p>Every study approved on this platform: what it is for, on what legal basis, which data it uses and what
it costs in privacy. Results are aggregates with differential privacy; no record about any resident
leaves the sector that holds it. Machine-readable: <a href="/v1/register">/v1/register</a>.</p>
<table><tr><th>Study</th><th>Purpose</th><th>Legal basis</th><th>Responsible</th><th>Data</th>
<th>Privacy</th><th>Outputs</th><th>Approved by</th><th>Status</th></tr>
{''.join(rows) or empty}</table>
<p><small>Audit log head: entry {head['seq']}, hash {html.escape(str(head['hash']))}</small></p>
</body></html>"""
