"""Templates, studies and their lifecycle: draft, cost, approve/reject, run, status, results and report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from coordinator import runner
from coordinator.api_models import (
    STUDY_ID, CostPreviewOut, DecisionRequest, StudyCreatedOut, StudyDraft, StudyOut, StudyResultOut, TemplateOut,
)
from coordinator.authz import CoordinatorDep, CurrentPrincipal, SessionDep
from coordinator.models import Study
from coordinator.reports import study_report
from coordinator.routes._common import ERRORS, HTML_ERRORS
from coordinator.web.render import REPORT_CSP
from coordinator.studies import cost_preview, create_study, decide, get_study, study_json
from federation.templates import TEMPLATES

router = APIRouter(tags=["studies"], responses=ERRORS)
StudyId = Annotated[str, Path(pattern=STUDY_ID)]


@router.get("/v1/templates", name="list_templates", response_model=list[TemplateOut])
def list_templates(principal: CurrentPrincipal) -> list[dict[str, Any]]:
    return [{"name": t.name, "title": t.title, "parameters": t.params.model_json_schema()}
            for t in TEMPLATES.values()]


@router.post("/v1/studies/preview", name="preview_cost", response_model=CostPreviewOut)
def preview_cost(body: StudyDraft, principal: CurrentPrincipal, coordinator: CoordinatorDep,
                 session: SessionDep) -> dict[str, Any]:
    return cost_preview(coordinator, session, body)


@router.post("/v1/studies", name="create_study", status_code=201, response_model=StudyCreatedOut)
def post_study(body: StudyDraft, principal: CurrentPrincipal, coordinator: CoordinatorDep,
               session: SessionDep) -> dict[str, Any]:
    return create_study(coordinator, session, principal, body)


@router.get("/v1/studies", name="list_studies", response_model=list[StudyOut])
def list_studies(principal: CurrentPrincipal, session: SessionDep) -> list[dict[str, Any]]:
    return [study_json(session, s) for s in session.execute(select(Study).order_by(Study.created_at)).scalars()]


@router.get("/v1/studies/{study_id}", name="get_study", response_model=StudyOut)
def get_one(study_id: StudyId, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    return study_json(session, get_study(session, study_id))


@router.post("/v1/studies/{study_id}/approve", name="approve_study", response_model=StudyOut)
def approve(study_id: StudyId, body: DecisionRequest, principal: CurrentPrincipal, coordinator: CoordinatorDep,
            session: SessionDep) -> dict[str, Any]:
    return decide(coordinator, session, principal, study_id, "approve", body)


@router.post("/v1/studies/{study_id}/reject", name="reject_study", response_model=StudyOut)
def reject(study_id: StudyId, body: DecisionRequest, principal: CurrentPrincipal, coordinator: CoordinatorDep,
           session: SessionDep) -> dict[str, Any]:
    return decide(coordinator, session, principal, study_id, "reject", body)


@router.post("/v1/studies/{study_id}/run", name="run_study", status_code=202, response_model=StudyOut)
def run(study_id: StudyId, principal: CurrentPrincipal, coordinator: CoordinatorDep,
        session: SessionDep) -> dict[str, Any]:
    return runner.launch(coordinator, session, principal, study_id)


@router.get("/v1/studies/{study_id}/results", name="study_results", response_model=StudyResultOut)
def results(study_id: StudyId, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    return runner.results(session, study_id)


@router.get("/v1/studies/{study_id}/report", name="study_report", response_class=HTMLResponse,
            responses=HTML_ERRORS)
def report(study_id: StudyId, principal: CurrentPrincipal, session: SessionDep, response: Response) -> str:
    """The study's self-contained HTML report (no scripts, no external assets), as ``tillit study results --out`` writes it."""
    response.headers["Content-Security-Policy"] = REPORT_CSP
    return study_report(session, study_id)
