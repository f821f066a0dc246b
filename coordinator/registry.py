"""Nodes and datasets: a node enrolls with its public key and the dataset it holds, and reports its
latest validation verdict — counts only, never a value."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from coordinator import audit
from coordinator.clock import now
from coordinator.models import Dataset, Node, Principal
from coordinator.principals import Identity
from tillit.errors import Conflict, Forbidden

if TYPE_CHECKING:
    from coordinator.state import Coordinator

__all__ = ["Enrollment", "Verdict", "enroll", "record_verdict"]

DATASET_ID = r"^[a-z0-9_-]+/[a-z0-9_]+$"


class Enrollment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = Field(pattern=DATASET_ID)
    contract: str = Field(pattern=r"^[a-z0-9_]+$")
    #: the SuperNode's public key (OpenSSH), as registered with the SuperLink
    public_key: str = Field(min_length=16, max_length=2000, pattern=r"^(ecdsa-sha2-nistp\d+|ssh-ed25519) [A-Za-z0-9+/=]+")


class Verdict(BaseModel):
    """What a node may say about its extract: the verdict and counts, nothing else."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict: str = Field(pattern=r"^(pass|warn|fail)$")
    rows: int = Field(ge=0)
    checks: int = Field(ge=0)
    failed_checks: int = Field(ge=0)
    warnings: int = Field(default=0, ge=0)
    contract_version: str = Field(max_length=32)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


def enroll(coordinator: Coordinator, session: Session, node: Identity, body: Enrollment) -> dict[str, Any]:
    if body.dataset not in node.datasets:
        raise Forbidden(f"node {node.name} may only enroll {', '.join(sorted(node.datasets))}")
    contract = coordinator.contracts.get(body.contract)
    municipality, sector = body.dataset.split("/", 1)
    principal = session.execute(select(Principal).where(Principal.name == node.name)).scalar_one()
    existing = session.execute(select(Node).where(Node.dataset == body.dataset)).scalar_one_or_none()
    if existing is not None and existing.principal_id != principal.id:
        raise Conflict(f"dataset {body.dataset} is enrolled by another node")
    if existing is None:
        session.add(Node(principal_id=principal.id, dataset=body.dataset, public_key=body.public_key,
                         enrolled_at=now()))
    else:
        existing.public_key = body.public_key
    dataset = session.get(Dataset, body.dataset)
    if dataset is None:
        session.add(Dataset(id=body.dataset, municipality=municipality, sector=sector, contract=contract.name,
                            contract_version=contract.version))
    else:
        dataset.contract, dataset.contract_version = contract.name, contract.version
    audit.append(session, coordinator.signer, node.name, "node.enrolled", body.dataset,
                 {"contract": contract.label, "public_key_sha256": _fingerprint(body.public_key)})
    return {"dataset": body.dataset, "contract": contract.label, "enrolled": True}


def record_verdict(coordinator: Coordinator, session: Session, node: Identity, dataset_id: str,
                   verdict: Verdict) -> dict[str, Any]:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise Conflict(f"dataset {dataset_id} is not enrolled yet")
    dataset.verdict, dataset.verdict_at = verdict.model_dump_json(), now()
    audit.append(session, coordinator.signer, node.name, "dataset.validated", dataset_id,
                 {"verdict": verdict.verdict, "rows": verdict.rows, "failed_checks": verdict.failed_checks})
    return dataset_json(dataset)


def dataset_json(dataset: Dataset) -> dict[str, Any]:
    return {"id": dataset.id, "municipality": dataset.municipality, "sector": dataset.sector,
            "contract": dataset.contract, "contract_version": dataset.contract_version,
            "validation": json.loads(dataset.verdict) if dataset.verdict else None,
            "validated_at": dataset.verdict_at}


def _fingerprint(public_key: str) -> str:
    import hashlib

    return hashlib.sha256(public_key.encode()).hexdigest()
