"""Routes anyone may call: health, the public register's JSON, the study-signing public key. (The register's
page is one of the web pages, ``coordinator.web.pages_public``.)"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from coordinator.api_models import HealthOut, RegisterOut
from coordinator.authz import CoordinatorDep, SessionDep
from coordinator.public_register import register_entries
from federation.signing import public_key_pem

router = APIRouter(tags=["public"])


@router.get("/healthz", name="health", response_model=HealthOut)
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/v1/register", name="public_register", response_model=RegisterOut)
def public_register(session: SessionDep) -> dict[str, Any]:
    return register_entries(session)


@router.get("/v1/signing-key", name="signing_key", response_class=PlainTextResponse)
def signing_key(coordinator: CoordinatorDep) -> str:
    """The Ed25519 public key nodes use to check that a study spec was approved here."""
    return public_key_pem(coordinator.signer.public).decode()
