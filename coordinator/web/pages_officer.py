"""A privacy officer's pages: their datasets and budgets (ε spent over time), the approval queue, the "check
before you decide" page of a study with its decision form, the ledger and the audit log with its verification.

Each page reads the same services the JSON API calls (ledger, studies, verify); the decision is
:func:`coordinator.studies.decide`, exactly as ``POST /v1/studies/{id}/approve``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.errors import TillitError
from coordinator.api_models import PERIOD, STUDY_ID, DecisionRequest, StudyDraft
from coordinator.authz import CoordinatorDep, SessionDep
from coordinator.charts import epsilon_text, step_line
from coordinator.ledger import balance, balances, ledger_entries, set_budget
from coordinator.models import AuditEntry, Budget, Dataset, Study
from coordinator.public_register import register_entry
from coordinator.studies import cost_preview, decide, get_study, study_json
from coordinator.verify import verify
from coordinator.web.deps import Form, PageUser
from coordinator.web.pages_auth import waiting_studies
from coordinator.web.render import Problem, cost_row, period_and_epsilon, render
from coordinator.web.strings import text
from federation.privacy import PrivacyLoss, epsilon, study_epsilon
from federation.spec import StudySpec

__all__ = ["router"]

router = APIRouter(tags=["pages"], include_in_schema=False)
Municipality = Annotated[str, Path(pattern=r"^[a-z0-9_-]{1,48}$")]
Sector = Annotated[str, Path(pattern=r"^[a-z0-9_]{1,48}$")]
StudyId = Annotated[str, Path(pattern=STUDY_ID)]
_AUDIT_SHOWN = 200


def _eps(units: int, delta: float) -> float:
    return epsilon(float(PrivacyLoss(units).rho), delta) if units > 0 else 0.0


def _charge_text(session: Session, study_id: str, units: int, delta: float) -> str:
    """A charge in words: ε against the budget (zCDP, how budgets add up) and, where the study was calibrated to
    the exact Gaussian curve, the smaller ε the study itself reports."""
    against = epsilon_text(_eps(units, delta))
    study = session.get(Study, study_id)
    if study is not None:
        spec = StudySpec.model_validate_json(study.spec)
        own = epsilon_text(study_epsilon(spec, PrivacyLoss(units)))
        if own != against:
            return text("event_charge_exact", study=study_id, own=own, eps=against)
    return text("event_charge", study=study_id, eps=against)


def _visible_datasets(session: Session, signed: PageUser) -> list[Dataset]:
    rows = list(session.execute(select(Dataset).order_by(Dataset.id)).scalars())
    if signed.identity.role == "admin":
        return rows
    return [d for d in rows if d.id in signed.identity.datasets]


@router.get("/datasets", name="web_datasets")
def datasets(request: Request, signed: PageUser, session: SessionDep) -> Response:
    rows = [(d, json.loads(d.verdict) if d.verdict else None, [b.to_json() for b in balances(session, d.id)])
            for d in _visible_datasets(session, signed)]
    return render(request, "datasets.html", rows=rows)


def _history(session: Session, dataset: str) -> list[dict[str, Any]]:
    """Per period: the budget settings and charges in time order, ε spent after each, the step chart and table."""
    budgets = list(session.execute(select(Budget).where(Budget.dataset == dataset).order_by(Budget.id)).scalars())
    charges = ledger_entries(session, dataset)
    periods = sorted({b.period for b in budgets} | {c.period for c in charges}, reverse=True)
    found = []
    for period in periods:
        delta = next((b.delta for b in reversed(budgets) if b.period == period), 1e-6)
        events: list[tuple[str, str, int, int]] = [(b.set_at, "budget", b.cap_units, 0) for b in budgets
                                                   if b.period == period]
        events += [(c.created_at, "charge", c.units, i) for i, c in enumerate(charges) if c.period == period]
        events.sort()
        spent, cap, rows = 0, None, []
        points: list[tuple[dt.datetime, float, str]] = []
        caps: list[tuple[dt.datetime, float]] = []
        for at, kind, units, index in events:
            when = dt.datetime.fromisoformat(at)
            if kind == "budget":
                cap = units
                caps.append((when, _eps(units, delta)))
                setter = next(b.set_by for b in budgets if b.set_at == at and b.cap_units == units)
                what = text("event_budget", eps=epsilon_text(_eps(units, delta)), by=setter)
            else:
                spent += units
                study = charges[index].study_id
                points.append((when, _eps(spent, delta), study))
                what = _charge_text(session, study, units, delta)
            rows.append({"at": at, "what": what, "spent": epsilon_text(_eps(spent, delta)),
                         "cap": epsilon_text(_eps(cap, delta)) if cap is not None else text("no_budget")})
        chart = step_line(text("spending_title", period=period), points, caps, dt.datetime.now(dt.timezone.utc))
        found.append({"period": period, "chart": chart, "rows": rows})
    return found


def _dataset_page(request: Request, session: Session, dataset_id: str, problems: list[Problem],
                  values: dict[str, str], status: int = 200, saved: str = "") -> Response:
    dataset = session.get(Dataset, dataset_id)
    return render(request, "dataset.html", status=status, dataset_id=dataset_id, dataset=dataset,
                  verdict=json.loads(dataset.verdict) if dataset and dataset.verdict else None,
                  periods=_history(session, dataset_id) if dataset else [], problems=problems, values=values,
                  saved=saved)


@router.get("/datasets/{municipality}/{sector}", name="web_dataset")
def dataset_page(request: Request, municipality: Municipality, sector: Sector, signed: PageUser,
                 session: SessionDep, saved: Annotated[str | None, Query(pattern=PERIOD)] = None) -> Response:
    dataset_id = f"{municipality}/{sector}"
    found = balance(session, dataset_id, saved) if saved else None
    message = text("budget_saved", eps=epsilon_text(found.to_json()["cap"]["epsilon"]), dataset=dataset_id,
                   period=saved) if found is not None else ""
    return _dataset_page(request, session, dataset_id, [], {}, saved=message)


@router.post("/datasets/{municipality}/{sector}/budget", name="web_set_budget")
def post_budget(request: Request, municipality: Municipality, sector: Sector, signed: PageUser, form: Form,
                session: SessionDep, coordinator: CoordinatorDep) -> Response:
    dataset_id = f"{municipality}/{sector}"
    period, raw = form.get("period", "").strip(), form.get("epsilon", "").strip()
    setting, problems = period_and_epsilon(period, raw, text("epsilon_invalid"))
    if setting is None:
        return _dataset_page(request, session, dataset_id, problems, {"period": period, "epsilon": raw}, 422)
    set_budget(coordinator, session, signed.identity.name, dataset_id, period, setting.epsilon, None, setting.delta)
    return RedirectResponse(f"/datasets/{dataset_id}?saved={quote(period)}", status_code=303)


@router.get("/approvals", name="web_approvals")
def approvals(request: Request, signed: PageUser, session: SessionDep,
              done: Annotated[str, Query(pattern=r"^$|" + STUDY_ID)] = "",
              decision: Annotated[str, Query(pattern=r"^(approve|reject)?$")] = "") -> Response:
    rows = waiting_studies(session, signed.identity.datasets)
    message = text(f"decided_{decision}", study=done) if done and decision else ""
    return render(request, "approvals.html", rows=rows, message=message)


def _check_page(request: Request, session: Session, coordinator: CoordinatorDep, signed: PageUser, study_id: str,
                problems: list[Problem], values: dict[str, str], status: int = 200) -> Response:
    study = get_study(session, study_id)
    about = study_json(session, study)
    entry = register_entry(session, study)
    mine = sorted(signed.identity.datasets & set(about["datasets"]))
    draft = StudyDraft(id=study.id, name=study.name, template=study.template, params=json.loads(study.params),
                       purpose=study.purpose, legal_basis=study.legal_basis, organisation=study.organisation,
                       contact=study.contact, period=study.period)
    preview = cost_preview(coordinator, session, draft)
    costs = [cost_row(dataset, preview["per_dataset"][dataset], " before it") for dataset in mine]
    decided = [a for a in about["approvals"] if a["dataset"] in mine]
    return render(request, "check.html", status=status, study=about, entry=entry, costs=costs, decided=decided,
                  problems=problems, values=values)


@router.get("/studies/{study_id}/check", name="web_check_study")
def check_study(request: Request, study_id: StudyId, signed: PageUser, session: SessionDep,
                coordinator: CoordinatorDep) -> Response:
    return _check_page(request, session, coordinator, signed, study_id, [], {})


@router.post("/studies/{study_id}/decision", name="web_decide_study")
def decide_study(request: Request, study_id: StudyId, signed: PageUser, form: Form, session: SessionDep,
                 coordinator: CoordinatorDep) -> Response:
    decision, reason = form.get("decision", ""), form.get("reason", "").strip()
    problems = []
    if decision not in ("approve", "reject"):
        problems.append(Problem("decision-approve", text("decision_missing")))
    if len(reason) < 3:
        problems.append(Problem("reason", text("reason_missing")))
    if not problems:
        try:
            with session.begin_nested():
                decide(coordinator, session, signed.identity, study_id, decision,  # type: ignore[arg-type]
                       DecisionRequest(reason=reason[:2000]))
        except TillitError as error:
            if error.http_status not in (409,):
                raise
            problems.append(Problem("decision-approve", error.message))
            return _check_page(request, session, coordinator, signed, study_id, problems,
                               {"decision": decision, "reason": reason}, 409)
        return RedirectResponse(f"/approvals?done={study_id}&decision={decision}", status_code=303)
    return _check_page(request, session, coordinator, signed, study_id, problems,
                       {"decision": decision, "reason": reason}, 422)


@router.get("/ledger", name="web_ledger")
def ledger(request: Request, signed: PageUser, session: SessionDep) -> Response:
    found = balances(session)
    deltas = {(b.name, b.period): b.delta for b in found}
    entries = [{"entry": e, "epsilon": _eps(e.units, deltas.get((e.dataset, e.period), 1e-6))}
               for e in ledger_entries(session)]
    return render(request, "ledger.html", entries=entries, balances=[b.to_json() for b in found])


def _details(payload: str) -> str:
    """An audit payload in a line: key: value, long hashes cut, amounts as they are."""
    try:
        found = json.loads(payload)
    except ValueError:
        return ""
    parts = []
    for key, value in found.items():
        shown = value if not isinstance(value, (dict, list)) else json.dumps(value, sort_keys=True)
        shown = str(shown)
        parts.append(f"{key}: {shown[:16] + '…' if len(shown) > 40 and ' ' not in shown else shown[:120]}")
    return "; ".join(parts)


@router.get("/audit", name="web_audit")
def audit_log(request: Request, signed: PageUser, session: SessionDep, coordinator: CoordinatorDep) -> Response:
    report = verify(session, coordinator.signer.public)
    entries = list(session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(_AUDIT_SHOWN)).scalars())
    return render(request, "audit.html", report=report, entries=[(e, _details(e.payload)) for e in entries])

