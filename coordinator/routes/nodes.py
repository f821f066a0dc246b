"""Node enrollment, the datasets registry and validation verdicts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from sqlalchemy import select

from coordinator.api_models import DatasetOut, EnrollmentOut, EnrollmentRequest, NodeOut, Verdict
from coordinator.authz import CoordinatorDep, CurrentPrincipal, SessionDep
from coordinator.enrollment import dataset_json, enroll, record_verdict
from coordinator.models import Dataset, Node
from coordinator.routes._common import ERRORS

router = APIRouter(tags=["nodes"], responses=ERRORS)
Municipality = Annotated[str, Path(pattern=r"^[a-z0-9_-]{1,48}$")]
Sector = Annotated[str, Path(pattern=r"^[a-z0-9_]{1,48}$")]


@router.put("/v1/nodes/{municipality}/{sector}", name="enroll_node", response_model=EnrollmentOut)
def enroll_node(municipality: Municipality, sector: Sector, body: EnrollmentRequest, principal: CurrentPrincipal,
                coordinator: CoordinatorDep, session: SessionDep) -> dict[str, Any]:
    return enroll(coordinator, session, principal, f"{municipality}/{sector}", body)


@router.get("/v1/nodes", name="list_nodes", response_model=list[NodeOut])
def list_nodes(principal: CurrentPrincipal, session: SessionDep) -> list[dict[str, Any]]:
    return [{"dataset": n.dataset, "public_key": n.public_key, "enrolled_at": n.enrolled_at}
            for n in session.execute(select(Node).order_by(Node.dataset)).scalars()]


@router.put("/v1/datasets/{municipality}/{sector}/validation", name="report_validation", response_model=DatasetOut)
def report_validation(municipality: Municipality, sector: Sector, body: Verdict, principal: CurrentPrincipal,
                      coordinator: CoordinatorDep, session: SessionDep) -> dict[str, Any]:
    return record_verdict(coordinator, session, principal, f"{municipality}/{sector}", body)


@router.get("/v1/datasets", name="list_datasets", response_model=list[DatasetOut])
def list_datasets(principal: CurrentPrincipal, session: SessionDep) -> list[dict[str, Any]]:
    return [dataset_json(d) for d in session.execute(select(Dataset).order_by(Dataset.id)).scalars()]
