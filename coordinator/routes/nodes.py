"""Node enrollment, the datasets registry and validation verdicts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from coordinator.authz import CoordinatorDep, CurrentPrincipal
from coordinator.models import Dataset, Node
from coordinator.registry import Enrollment, Verdict, dataset_json, enroll, record_verdict
from coordinator.routes._common import ERRORS

router = APIRouter(tags=["nodes"], responses=ERRORS)


@router.post("/v1/nodes", name="enroll_node")
def enroll_node(body: Enrollment, principal: CurrentPrincipal, coordinator: CoordinatorDep) -> dict[str, Any]:
    with coordinator.db.transaction() as session:
        return enroll(coordinator, session, principal, body)


@router.get("/v1/nodes", name="list_nodes")
def list_nodes(principal: CurrentPrincipal, coordinator: CoordinatorDep) -> list[dict[str, Any]]:
    with coordinator.db.transaction() as session:
        return [{"dataset": n.dataset, "public_key": n.public_key, "enrolled_at": n.enrolled_at}
                for n in session.execute(select(Node).order_by(Node.dataset)).scalars()]


@router.put("/v1/datasets/{municipality}/{sector}/validation", name="report_validation")
def report_validation(municipality: str, sector: str, body: Verdict, principal: CurrentPrincipal,
                      coordinator: CoordinatorDep) -> dict[str, Any]:
    with coordinator.db.transaction() as session:
        return record_verdict(coordinator, session, principal, f"{municipality}/{sector}", body)


@router.get("/v1/datasets", name="list_datasets")
def list_datasets(principal: CurrentPrincipal, coordinator: CoordinatorDep) -> list[dict[str, Any]]:
    with coordinator.db.transaction() as session:
        return [dataset_json(d) for d in session.execute(select(Dataset).order_by(Dataset.id)).scalars()]
