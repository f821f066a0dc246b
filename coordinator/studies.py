"""Studies: draft from a template → cost preview → every touched dataset's privacy officer approves (or
one rejects) → charge every dataset and sign the spec. Launching and results are in :mod:`coordinator.runner`;
the statuses and their transitions in :mod:`coordinator.lifecycle`.

The charge happens with the last approval, in the same transaction that signs the spec: no node
accepts an unsigned spec, so nothing can be released before the charge is durable.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.errors import Conflict, NotFound, TillitError, UsageError
from coordinator import audit
from coordinator.api_models import DecisionRequest, StudyDraft
from coordinator.clock import now
from coordinator.ledger import balance, charge, municipality_balance
from coordinator.lifecycle import StudyStatus, move
from coordinator.models import Approval, Dataset, Node, Study
from coordinator.principals import Identity
from federation.privacy import PrivacyLoss, StudyPlan, amount_json, plan_study
from federation.signing import sign_spec
from federation.spec import StudySpec
from federation.templates import build_spec

if TYPE_CHECKING:
    from coordinator.state import Coordinator

__all__ = ["approved_spec", "cost_preview", "create_study", "decide", "get_study", "spec_sha256", "study_json"]


def _plan(coordinator: Coordinator, draft: StudyDraft) -> tuple[StudySpec, StudyPlan]:
    spec = build_spec(draft.template, draft.id, draft.period, draft.params, coordinator.contracts)
    try:
        plan = plan_study(spec, coordinator.contracts)
    except TillitError:
        raise
    except Exception as error:  # noqa: BLE001 - OpenDP refuses parameters it cannot calibrate
        raise UsageError(f"study {draft.id} cannot be calibrated with these parameters "
                         f"({type(error).__name__})") from None
    return spec, plan


def cost_preview(coordinator: Coordinator, session: Session, draft: StudyDraft) -> dict[str, Any]:
    """What the study would cost each dataset, computed by the privacy module the nodes use, and what is left."""
    spec, plan = _plan(coordinator, draft)
    return _cost_json(session, spec, plan)


def _cost_json(session: Session, spec: StudySpec, plan: StudyPlan) -> dict[str, Any]:
    period = spec.period or ""
    costs = plan.per_dataset
    per_dataset = {}
    for dataset, cost in sorted(costs.items()):
        found = balance(session, dataset, period)
        per_dataset[dataset] = {
            **amount_json(cost, spec.privacy.delta), "delta": spec.privacy.delta,
            "study_epsilon": plan.epsilon_of(dataset),
            "budget": found.to_json() if found else None,
            "fits": bool(found and found.fits(cost)),
            "noise": plan.what_noise_means(dataset),
        }
    municipalities = {}
    for municipality in sorted({d.split("/", 1)[0] for d in costs}):
        capped = municipality_balance(session, municipality, period)
        if capped is not None:
            total = sum((c for d, c in costs.items() if d.startswith(municipality + "/")), PrivacyLoss.zero())
            municipalities[municipality] = {**capped.to_json(), "fits": capped.fits(total)}
    return {"study_id": spec.study_id, "period": period, "task": spec.task, "per_dataset": per_dataset,
            "municipality_caps": municipalities, "fits": all(v["fits"] for v in per_dataset.values())
            and all(v["fits"] for v in municipalities.values())}


def create_study(coordinator: Coordinator, session: Session, analyst: Identity, draft: StudyDraft) -> dict[str, Any]:
    if session.get(Study, draft.id) is not None:
        raise Conflict(f"a study with id {draft.id} exists already")
    spec, plan = _plan(coordinator, draft)
    costs, eps = plan.per_dataset, plan.epsilon
    unknown = [d for d in spec.datasets if session.get(Dataset, d) is None]
    if unknown:
        raise NotFound(f"dataset {unknown[0]} is not registered; its node must enroll first")
    study = Study(id=draft.id, name=draft.name, template=draft.template, params=json.dumps(draft.params),
                  purpose=draft.purpose, legal_basis=draft.legal_basis, organisation=draft.organisation,
                  contact=draft.contact, period=draft.period, analyst=analyst.name, status=StudyStatus.PENDING.value,
                  spec=spec.model_dump_json(), cost=json.dumps({d: c.units for d, c in costs.items()}),
                  created_at=now())
    session.add(study)
    audit.append(session, coordinator.signer, analyst.name, "study.created", draft.id,
                 {"template": draft.template, "datasets": list(spec.datasets), "period": draft.period,
                  "epsilon": eps, "delta": spec.privacy.delta, "spec_sha256": spec_sha256(spec),
                  "cost": {d: c.units for d, c in sorted(costs.items())}, "status": StudyStatus.PENDING.value})
    return {**study_json(session, study), "preview": _cost_json(session, spec, plan)}


def get_study(session: Session, study_id: str, lock: bool = False) -> Study:
    query = select(Study).where(Study.id == study_id)
    study = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if study is None:
        raise NotFound(f"no study {study_id}")
    return study


def decide(coordinator: Coordinator, session: Session, officer: Identity, study_id: str,
           decision: Literal["approve", "reject"], body: DecisionRequest) -> dict[str, Any]:
    """Record the officer's decision for every dataset of the study they answer for (authorization has
    checked that there is at least one).

    The last approval charges every dataset (or fails with BudgetExceeded and changes nothing) and
    signs the spec.
    """
    study = get_study(session, study_id, lock=True)
    spec = StudySpec.model_validate_json(study.spec)
    mine = sorted(officer.datasets & set(spec.datasets))
    if study.status != StudyStatus.PENDING:
        raise Conflict(f"study {study_id} is {study.status}; decisions are taken while it is pending")
    decided = {a.dataset for a in session.execute(select(Approval).where(Approval.study_id == study_id)).scalars()}
    todo = [d for d in mine if d not in decided]
    if not todo:
        raise Conflict(f"{officer.name} has already decided on study {study_id} for {', '.join(mine)}")
    at = now()
    for dataset in todo:
        session.add(Approval(study_id=study_id, dataset=dataset, officer=officer.name, decision=decision,
                             reason=body.reason, at=at))
    payload = {"datasets": todo, "reason": body.reason}
    if decision == "reject":
        move(session, coordinator.signer, study, StudyStatus.REJECTED, officer.name, "study.rejected", payload)
    elif decided | set(todo) >= set(spec.datasets):
        costs = {d: PrivacyLoss(u) for d, u in json.loads(study.cost).items()}
        charge(coordinator, session, officer.name, study_id, study.period, costs)
        # the chain's position right after the charge, signed into the spec: every node records it and refuses a
        # later spec whose anchor goes backwards (nodes.ledger.NodeLedger.record_anchor)
        anchor = audit.anchor(session)
        signed = sign_spec(_with_participants(session, spec).model_copy(update={"audit_anchor": anchor}),
                           coordinator.signer)
        study.spec = signed.model_dump_json()
        move(session, coordinator.signer, study, StudyStatus.APPROVED, officer.name, "study.approved", payload, at)
        audit.append(session, coordinator.signer, "coordinator", "study.signed", study_id,
                     {"spec_sha256": spec_sha256(signed), "audit_anchor": {"seq": anchor.seq, "hash": anchor.hash}})
    else:   # other datasets' officers have yet to decide
        audit.append(session, coordinator.signer, officer.name, "study.approved", study_id, payload)
    return study_json(session, study)


def _with_participants(session: Session, spec: StudySpec) -> StudySpec:
    """A cross-sector spec names each dataset's enrolled identity key: nodes trust each other's study keys only
    under these, and the coordinator's signature binds them."""
    if spec.cross_sector is None:
        return spec
    keys = {n.dataset: n.public_key for n in session.execute(select(Node).where(Node.dataset.in_(spec.datasets)))
            .scalars()}
    missing = sorted(set(spec.datasets) - set(keys))
    if missing:
        raise Conflict(f"dataset {missing[0]} has no enrolled node key; its node enrolls before the study is approved")
    return spec.model_copy(update={"cross_sector": spec.cross_sector.model_copy(update={"participants": keys})})


def approved_spec(study: Study) -> StudySpec:
    return StudySpec.model_validate_json(study.spec)


def spec_sha256(spec: StudySpec) -> str:
    return hashlib.sha256(spec.canonical_json().encode()).hexdigest()


def study_json(session: Session, study: Study) -> dict[str, Any]:
    spec = StudySpec.model_validate_json(study.spec)
    approvals = [{"dataset": a.dataset, "officer": a.officer, "decision": a.decision, "reason": a.reason, "at": a.at}
                 for a in session.execute(select(Approval).where(Approval.study_id == study.id)
                                          .order_by(Approval.id)).scalars()]
    cost = {d: amount_json(PrivacyLoss(u), spec.privacy.delta) for d, u in json.loads(study.cost).items()}
    return {
        "id": study.id, "name": study.name, "template": study.template, "params": json.loads(study.params),
        "purpose": study.purpose, "legal_basis": study.legal_basis, "organisation": study.organisation,
        "contact": study.contact, "period": study.period, "analyst": study.analyst, "status": study.status,
        "datasets": list(spec.datasets), "delta": spec.privacy.delta, "cost": cost, "approvals": approvals,
        "signed": spec.signature is not None, "created_at": study.created_at, "approved_at": study.approved_at,
        "launched_at": study.launched_at, "finished_at": study.finished_at, "run_id": study.run_id,
        "progress": json.loads(study.progress) if study.progress else None,
        "error": json.loads(study.error) if study.error else None,
    }

