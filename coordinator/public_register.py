"""The public register: every approved study, what it is for, what data it uses and what it cost.

The fields follow the public algorithm registers of Amsterdam (algoritmeregister.amsterdam.nl) and
Helsinki (ai.hel.fi): name, purpose, legal basis, responsible organisation and contact, data
sources and variables, human oversight (who approved), method, privacy safeguards, outputs,
status and dates. No login; nothing that is not already public in the study's approval.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from coordinator.lifecycle import LISTED
from coordinator.models import Approval, ChainHead, Study
from federation.privacy import PrivacyLoss, epsilon, study_epsilon
from federation.spec import StudySpec

__all__ = ["privacy_in_words", "register_entries", "register_entry", "register_sentences", "register_sentences_html"]
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
        if m.method == "newton":
            return (f"Logistic regression by a noisy Newton method: {m.round_count} rounds; in each, every node adds "
                    "Gaussian noise to the sum of its residents' gradients (each resident's clipped) and, in a few "
                    "rounds, to the curvature of its data; the coordinator adds the noisy sums and steps.")
        return (f"Logistic regression by differentially private gradient descent: {m.round_count} rounds of "
                f"{m.local_steps} local steps; each resident's gradient clipped to norm {m.clipping_norm or 1.0:g} "
                "and Gaussian noise added at every node on every step; the coordinator averages noisy updates.")
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


def _privacy(spec: StudySpec, loss: PrivacyLoss) -> dict[str, Any]:
    """A dataset's cost: ε of this study alone (the exact Gaussian curve for a study of Gaussian releases
    calibrated to it), and what the charge counts as against a budget set in ε (zCDP)."""
    rho, delta = float(loss.rho), spec.privacy.delta
    return {"epsilon": round(study_epsilon(spec, loss), 6), "epsilon_zcdp": round(epsilon(rho, delta), 6),
            "delta": delta, "rho": rho}


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
        "privacy": {d: _privacy(spec, PrivacyLoss(u)) for d, u in sorted(cost.items())},
        "mechanism": _mechanism(spec), "output_kinds": _OUTPUTS[spec.task],
        "human_oversight": [{"dataset": a.dataset, "decision": a.decision, "by": a.officer, "at": a.at}
                            for a in approvals],
        "dates": {"drafted": study.created_at, "approved": study.approved_at, "started": study.launched_at,
                  "finished": study.finished_at},
    }


def _when(stamp: str | None) -> str:
    """An ISO time as a date a person reads: 1 December 2026."""
    if not stamp:
        return ""
    try:
        day = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    return f"{day.day} {day.strftime('%B %Y')}"


def _epsilon(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def privacy_in_words(entry: dict[str, Any]) -> str:
    """The privacy cost of a study as a sentence."""
    parts = []
    for dataset, p in entry["privacy"].items():
        parts.append(f"ε {_epsilon(p['epsilon'])} for the residents in {dataset}")
    eps = max((p["epsilon"] for p in entry["privacy"].values()), default=0.0)
    first: dict[str, float] = next(iter(entry["privacy"].values()), {})
    delta = first.get("delta", 1e-6)
    return (f"The privacy cost per resident is {', '.join(parts)} (with δ = {delta:g}). This means whatever the "
            f"study publishes is at most {math.exp(eps):.1f} times more or less likely with any one resident's records "
            "than without them, so nobody can tell from the results whether a given person was in the data.")


def register_sentences(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """One study's register entry as (heading, plain sentences), in the order of the Amsterdam and Helsinki
    algorithm registers: summary first, then data, model, non-discrimination, human oversight, risks, contact."""
    datasets = ", ".join(entry["datasets"])
    decisions = [f"{'approved' if a['decision'] == 'approve' else 'rejected'} by {a['by']}, the privacy officer "
                 f"for {a['dataset']}, on {_when(a['at'])}" for a in entry["human_oversight"]]
    status = _STATUS_WORDS.get(entry["status"], entry["status"])
    dates = entry["dates"]
    return [
        ("Summary", f"{entry['responsible_organisation']} runs the study “{entry['name']}”. Its purpose: "
                    f"{entry['purpose'].rstrip('.')}. The study {status}"
                    + (f"; it was approved on {_when(dates.get('approved'))}" if dates.get("approved") else "")
                    + (f" and finished on {_when(dates.get('finished'))}" if dates.get("finished") else "") + "."),
        ("Legal basis", entry["legal_basis"].rstrip(".") + "."),
        ("Data", f"It uses the data period {entry['data_period']} of {datasets} (data contract "
                 f"{entry['contract']}). The variables used are: {'; '.join(entry['variables'])}. The data stay "
                 "with the sector that holds them; only noisy aggregates leave."),
        ("Model", f"{entry['mechanism']} It releases {', '.join(entry['output_kinds'])}."),
        ("Privacy cost", privacy_in_words(entry)),
        ("Non-discrimination", "The study makes no decision about any person and produces no score for anyone: it "
                               "releases aggregate figures for planning services. Groups that are small in the data "
                               "get results with wide uncertainty rather than being left out, and the report shows "
                               "that uncertainty."),
        ("Human oversight", "Every dataset's privacy officer decides before anything is computed: "
                            + ("; ".join(decisions) if decisions else "no decision yet") + ". Each decision is "
                            "recorded in a signed, tamper-evident audit log."),
        ("Risks", "Re-identification of a resident is the main risk; differential privacy bounds it as described "
                  "above, and every node checks the privacy cost itself before releasing anything. Results on "
                  "small groups can be too noisy to use; the report states the uncertainty of each figure."),
        ("Contact", f"Questions about this study: {entry['contact']} ({entry['responsible_organisation']})."),
    ]


_STATUS_WORDS = {"approved": "is approved and waiting to run", "launching": "is starting", "running": "is running",
                 "released": "has finished and its results are published", "failed": "was approved but did not "
                 "finish; nothing was released", "pending": "awaits approval", "rejected": "was rejected"}


def register_sentences_html(entry: dict[str, Any]) -> str:
    """The entry as a definition list of sentences (for the study report)."""
    return "<dl class='register'>" + "".join(f"<dt>{html.escape(h)}</dt><dd>{html.escape(t)}</dd>"
                                             for h, t in register_sentences(entry)) + "</dl>"
