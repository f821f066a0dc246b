"""Principals and their bearer tokens. Tokens are random, shown once, and stored only as SHA-256.

A principal is never changed or deleted, only revoked (the database refuses anything else); its creation
and its revocation are audit entries that carry what the row holds — role, datasets, a digest of the token
hash — so that ``tillit audit verify`` can tell a row someone edited from the one the coordinator wrote.
"""

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

from common.errors import Conflict, NameTaken, NotAuthenticated, NotFound, UsageError
from coordinator import audit
from coordinator.clock import now
from coordinator.db import Database
from coordinator.models import Principal
from federation.signing import SigningKey

__all__ = ["ROLES", "Identity", "Role", "authenticate", "bootstrap_admin", "create_principal", "hash_token",
           "revoke_principal", "token_digest"]

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


def token_digest(token_hash: str) -> str:
    """What the audit log says about a token: a digest of its stored hash (never the hash the database matches)."""
    return hashlib.sha256(b"tillit.audit.token\0" + token_hash.encode()).hexdigest()


def create_principal(signer: SigningKey, session: Session, actor: str, name: str, role: str,
                     datasets: tuple[str, ...] = ()) -> str:
    """Add a principal; returns its token (the only time it is ever available). Raises :class:`NameTaken` for a
    name in use (revoked or not), :class:`UsageError` for a role and datasets that do not go together."""
    datasets = tuple(sorted(set(datasets)))
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if role in ("privacy_officer", "node") and not datasets:
        raise UsageError(f"a {role.replace('_', ' ')} must be given the datasets they answer for")
    if role in ("admin", "analyst") and datasets:
        raise UsageError(f"an {role} answers for no dataset (only privacy officers and nodes do): give no datasets")
    if session.execute(select(Principal).where(Principal.name == name)).scalar_one_or_none() is not None:
        raise NameTaken(f"a principal named {name!r} exists already")
    token = "tlt_" + secrets.token_urlsafe(32)
    session.add(Principal(name=name, role=role, token_hash=hash_token(token),
                          datasets=json.dumps(sorted(datasets)), created_at=now()))
    audit.append(session, signer, actor, "principal.created", name,
                 {"name": name, "role": role, "datasets": sorted(datasets),
                  "token_digest": token_digest(hash_token(token)), "revoked": False})
    return token


def revoke_principal(signer: SigningKey, session: Session, actor: str, name: str) -> Principal:
    """Revoke ``name``'s token for good: every route answers it 401 from the next request on. The last active
    admin cannot be revoked (nobody could add principals any more)."""
    admins = session.execute(select(Principal).where(Principal.role == "admin", Principal.revoked_at.is_(None))
                             .order_by(Principal.id).with_for_update()).scalars().all()
    row = session.execute(select(Principal).where(Principal.name == name).with_for_update()).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no principal named {name!r}")
    if row.revoked_at is not None:
        raise Conflict(f"{name} was revoked already ({row.revoked_at})")
    if row.role == "admin" and [a.name for a in admins] == [name]:
        raise Conflict(f"{name} is the last active admin; add another admin before revoking this one")
    row.revoked_at = now()
    audit.append(session, signer, actor, "principal.revoked", name,
                 {"name": name, "role": row.role, "revoked": True})
    return row


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
