"""Nodes and datasets: a node enrolls the dataset it holds with its SuperNode's public key, and reports its
latest validation verdict — counts only, never a value."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.errors import Conflict, Forbidden
from coordinator import audit
from coordinator.api_models import EnrollmentRequest, Verdict
from coordinator.clock import now
from coordinator.models import Dataset, Node, Principal
from coordinator.principals import Identity

if TYPE_CHECKING:
    from coordinator.state import Coordinator

__all__ = ["dataset_json", "enroll", "key_fingerprint", "record_verdict"]


def enroll(coordinator: Coordinator, session: Session, node: Identity, dataset_id: str,
           body: EnrollmentRequest) -> dict[str, Any]:
    """Enroll (or re-key) the node's dataset; authorization has checked the node holds ``dataset_id``.

    A dataset stays with the node that enrolled it first, under the contract it was enrolled with: a
    node may renew its key or the contract's version, never move the dataset to another contract."""
    contract = coordinator.contracts.get(body.contract)
    municipality, sector = dataset_id.split("/", 1)
    principal = session.execute(select(Principal).where(Principal.name == node.name)).scalar_one()
    existing = session.execute(select(Node).where(Node.dataset == dataset_id)).scalar_one_or_none()
    if existing is not None and existing.principal_id != principal.id:
        raise Conflict(f"dataset {dataset_id} is enrolled by another node")
    dataset = session.get(Dataset, dataset_id)
    if dataset is not None and dataset.contract != contract.name:
        raise Conflict(f"dataset {dataset_id} is enrolled under contract {dataset.contract}, not {contract.name}")
    if existing is None:
        session.add(Node(principal_id=principal.id, dataset=dataset_id, public_key=body.public_key,
                         enrolled_at=now()))
    else:
        existing.public_key = body.public_key
    if dataset is None:
        session.add(Dataset(id=dataset_id, municipality=municipality, sector=sector, contract=contract.name,
                            contract_version=contract.version))
    else:
        dataset.contract_version = contract.version
    audit.append(session, coordinator.signer, node.name, "node.enrolled", dataset_id,
                 {"contract": contract.label, "public_key_sha256": key_fingerprint(body.public_key)})
    return {"dataset": dataset_id, "contract": contract.label, "enrolled": True}


def record_verdict(coordinator: Coordinator, session: Session, node: Identity, dataset_id: str,
                   verdict: Verdict) -> dict[str, Any]:
    """The latest verdict of the node enrolled for ``dataset_id`` (another node principal may not speak for it)."""
    dataset = session.get(Dataset, dataset_id)
    enrolled = session.execute(select(Node, Principal).join(Principal, Node.principal_id == Principal.id)
                               .where(Node.dataset == dataset_id)).first()
    if dataset is None or enrolled is None:
        raise Conflict(f"dataset {dataset_id} is not enrolled yet")
    if enrolled[1].name != node.name:
        raise Forbidden(f"{node.name} is not the node enrolled for {dataset_id}")
    dataset.verdict, dataset.verdict_at = verdict.model_dump_json(), now()
    audit.append(session, coordinator.signer, node.name, "dataset.validated", dataset_id,
                 {"verdict": verdict.verdict, "rows": verdict.rows, "failed_checks": verdict.failed_checks})
    return dataset_json(dataset)


def dataset_json(dataset: Dataset) -> dict[str, Any]:
    return {"id": dataset.id, "municipality": dataset.municipality, "sector": dataset.sector,
            "contract": dataset.contract, "contract_version": dataset.contract_version,
            "validation": json.loads(dataset.verdict) if dataset.verdict else None,
            "validated_at": dataset.verdict_at}


def key_fingerprint(public_key: str) -> str:
    """How the audit log names an enrolled key (``tillit audit verify`` compares the nodes table with it)."""
    return hashlib.sha256(public_key.encode()).hexdigest()
