"""Principals and their bearer tokens. Tokens are random, shown once, and stored only as SHA-256."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.errors import Conflict, NotAuthenticated, UsageError
from coordinator import audit
from coordinator.clock import now
from coordinator.db import Database
from coordinator.models import Principal
from federation.signing import SigningKey

__all__ = ["ROLES", "Identity", "Role", "authenticate", "bootstrap_admin", "create_principal", "hash_token"]

Role = Literal["admin", "privacy_officer", "analyst", "node"]
ROLES: tuple[Role, ...] = ("admin", "privacy_officer", "analyst", "node")


@dataclass(frozen=True)
class Identity:
    """The authenticated caller: who, in which role, answering for (or holding) which datasets."""

    name: str
    role: Role
    datasets: frozenset[str]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_principal(signer: SigningKey, session: Session, actor: str, name: str, role: str,
                     datasets: tuple[str, ...] = ()) -> str:
    """Add a principal; returns its token (the only time it is ever available)."""
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if role in ("privacy_officer", "node") and not datasets:
        raise UsageError(f"a {role.replace('_', ' ')} must be given the datasets they answer for")
    if session.execute(select(Principal).where(Principal.name == name)).scalar_one_or_none() is not None:
        raise Conflict(f"a principal named {name!r} exists already")
    token = "tlt_" + secrets.token_urlsafe(32)
    session.add(Principal(name=name, role=role, token_hash=hash_token(token),
                          datasets=json.dumps(sorted(datasets)), created_at=now()))
    audit.append(session, signer, actor, "principal.created", name,
                 {"role": role, "datasets": sorted(datasets)})
    return token


def authenticate(session: Session, token: str | None) -> Identity:
    if not token:
        raise NotAuthenticated("this endpoint needs a bearer token (Authorization: Bearer <token>)")
    row = session.execute(select(Principal).where(Principal.token_hash == hash_token(token))).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        raise NotAuthenticated("the token is not known to this coordinator, or was revoked")
    return Identity(name=row.name, role=row.role, datasets=frozenset(json.loads(row.datasets)))  # type: ignore[arg-type]


def bootstrap_admin(db: Database, signer: SigningKey, path: Path) -> None:
    """On the first start, create the admin and write its token to a file only its owner can read."""
    with db.transaction() as session:
        if session.execute(select(func.count()).select_from(Principal)).scalar_one():
            return
        token = create_principal(signer, session, "coordinator", "admin", "admin")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(token + "\n")
