"""The audit log, for privacy officers and admins; ``tillit audit verify`` checks it offline too (with a public
key kept apart from the coordinator's state). Both report the same problems: the chain's, the anchors' and every
table row that disagrees with the chain."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from common.errors import UsageError
from coordinator.api_models import AuditEntryOut, ChainReportOut
from coordinator.audit import parse_anchor
from coordinator.authz import CoordinatorDep, CurrentPrincipal, SessionDep
from coordinator.models import AuditEntry
from coordinator.routes._common import ERRORS
from coordinator.verify import verify

router = APIRouter(tags=["audit"], responses=ERRORS)


@router.get("/v1/audit", name="audit_log", response_model=list[AuditEntryOut])
def audit_log(principal: CurrentPrincipal, session: SessionDep,
              after: Annotated[int, Query(ge=0, le=2**62)] = 0,
              limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[dict[str, Any]]:
    rows = session.execute(select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq)
                           .limit(limit)).scalars()
    return [{"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "subject": e.subject,
             "payload": json.loads(e.payload), "hash": e.hash} for e in rows]


@router.get("/v1/audit/verify", name="audit_verify", response_model=ChainReportOut)
def audit_verify(principal: CurrentPrincipal, coordinator: CoordinatorDep, session: SessionDep,
                 anchor: Annotated[list[str], Query(max_length=1000, description=(
                     "SEQ:HASH of an audit anchor kept outside the database (a node's recorded anchor, the "
                     "register's published head); repeatable"))] = []) -> dict[str, Any]:
    try:
        anchors = [parse_anchor(text) for text in anchor]
    except ValueError as error:
        raise UsageError(str(error)) from None
    report = verify(session, coordinator.signer.public, anchors)
    return {"intact": report.intact, "entries": report.entries, "head_seq": report.head_seq,
            "head_hash": report.head_hash, "problems": report.problems}
