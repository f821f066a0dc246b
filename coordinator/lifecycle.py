"""A study's lifecycle: its statuses and the one function that moves a study between them.

    pending ──approve (last dataset)──▶ approved ──run──▶ launching ──submitted──▶ running ──▶ released
       │                                   ▲                 │                        │
       └──reject──▶ rejected               └─launch failed───┘                        └──▶ failed

Every transition goes through :func:`move`, which refuses a move the table does not allow, stamps
the study's dates and writes the audit entry — carrying the new ``status``, so the chain alone says what
each study's status is — in the same transaction. Nothing else assigns ``Study.status``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from common.errors import Conflict
from coordinator import audit
from coordinator.clock import now

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from coordinator.models import Study
    from federation.signing import SigningKey

__all__ = ["LISTED", "TRANSITIONS", "StudyStatus", "move"]


class StudyStatus(StrEnum):
    PENDING = "pending"
    REJECTED = "rejected"
    APPROVED = "approved"
    LAUNCHING = "launching"
    RUNNING = "running"
    RELEASED = "released"
    FAILED = "failed"


#: from each status, where a study may go next
TRANSITIONS: dict[StudyStatus, frozenset[StudyStatus]] = {
    StudyStatus.PENDING: frozenset({StudyStatus.APPROVED, StudyStatus.REJECTED}),
    StudyStatus.APPROVED: frozenset({StudyStatus.LAUNCHING}),
    # a launch that failed, or was interrupted by a crash, goes back to approved (it was charged already)
    StudyStatus.LAUNCHING: frozenset({StudyStatus.RUNNING, StudyStatus.APPROVED}),
    StudyStatus.RUNNING: frozenset({StudyStatus.RELEASED, StudyStatus.FAILED}),
    StudyStatus.REJECTED: frozenset(),
    StudyStatus.RELEASED: frozenset(),
    StudyStatus.FAILED: frozenset(),
}

#: statuses the public register lists: every study a privacy officer approved
LISTED = (StudyStatus.APPROVED, StudyStatus.LAUNCHING, StudyStatus.RUNNING, StudyStatus.RELEASED,
          StudyStatus.FAILED)

_STAMPS = {StudyStatus.APPROVED: "approved_at", StudyStatus.RUNNING: "launched_at",
           StudyStatus.RELEASED: "finished_at", StudyStatus.FAILED: "finished_at"}


def move(session: Session, signer: SigningKey, study: Study, to: StudyStatus, actor: str, action: str,
         payload: dict[str, Any] | None = None, at: str | None = None) -> None:
    """Move ``study`` to ``to`` (or refuse with Conflict), stamp its date and audit ``action``."""
    current = StudyStatus(study.status)
    if to not in TRANSITIONS[current]:
        raise Conflict(f"study {study.id} is {current}; it cannot become {to}")
    study.status = to.value
    stamp = _STAMPS.get(to)
    if stamp is not None:
        setattr(study, stamp, at or now())
    audit.append(session, signer, actor, action, study.id, {**(payload or {}), "status": to.value})
