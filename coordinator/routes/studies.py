"""Templates, studies and their lifecycle: draft, cost, approve/reject, run, status, results."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from coordinator import runner
from coordinator.authz import CoordinatorDep, CurrentPrincipal
from coordinator.models import Study
from coordinator.routes._common import ERRORS
from coordinator.schemas import StudyOut
from coordinator.studies import Decision, StudyDraft, cost_preview, create_study, decide, get_study, study_json
from federation.templates import TEMPLATES

router = APIRouter(tags=["studies"], responses=ERRORS)


@router.get("/v1/templates", name="list_templates")
def list_templates(principal: CurrentPrincipal) -> list[dict[str, Any]]:
    return [{"name": t.name, "title": t.title, "parameters": t.params.model_json_schema()}
            for t in TEMPLATES.values()]


@router.post("/v1/studies/preview", name="preview_cost")
def preview_cost(body: StudyDraft, principal: CurrentPrincipal, coordinator: CoordinatorDep) -> dict[str, Any]:
    with coordinator.db.transaction() as session:
        return cost_preview(coordinator, session, body)


@router.post("/v1/studies", name="create_study", status_code=201)
def post_study(body: StudyDraft, principal: CurrentPrincipal, coordinator: CoordinatorDep) -> dict[str, Any]:
    with coordinator.db.transaction() as session:
        return create_study(coordinator, session, principal, body)


@router.get("/v1/studies", name="list_studies", response_model=list[StudyOut])
def list_studies(principal: CurrentPrincipal, coordinator: CoordinatorDep) -> list[dict[str, Any]]:
    with coordinator.db.transaction() as session:
        return [study_json(session, s) for s in session.execute(select(Study).order_by(Study.created_at)).scalars()]


@router.get("/v1/studies/{study_id}", name="get_study", response_model=StudyOut)
def get_one(study_id: str, principal: CurrentPrincipal, coordinator: CoordinatorDep) -> dict[str, Any]:
    with coordinator.db.transaction() as session:
        return study_json(session, get_study(session, study_id))


@router.post("/v1/studies/{study_id}/approve", name="approve_study", response_model=StudyOut)
def approve(study_id: str, body: Decision, principal: CurrentPrincipal, coordinator: CoordinatorDep) -> dict[str, Any]:
    with coordinator.db.transaction() as session:
        return decide(coordinator, session, principal, study_id, "approve", body)


@router.post("/v1/studies/{study_id}/reject", name="reject_study", response_model=StudyOut)
def reject(study_id: str, body: Decision, principal: CurrentPrincipal, coordinator: CoordinatorDep) -> dict[str, Any]:
    with coordinator.db.transaction() as session:
        return decide(coordinator, session, principal, study_id, "reject", body)


@router.post("/v1/studies/{study_id}/run", name="run_study", status_code=202, response_model=StudyOut)
def run(study_id: str, principal: CurrentPrincipal, coordinator: CoordinatorDep) -> dict[str, Any]:
    return runner.launch(coordinator, principal, study_id)


@router.get("/v1/studies/{study_id}/results", name="study_results")
def results(study_id: str, principal: CurrentPrincipal, coordinator: CoordinatorDep) -> dict[str, Any]:
    return runner.results(coordinator, study_id)
