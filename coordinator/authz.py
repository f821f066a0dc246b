"""Who may call what: one policy table and one dependency that enforces it for every route.

Each protected route is named in :data:`POLICY` with the roles allowed and, where it matters, the
scope: a privacy officer or node acts only on the datasets it answers for (a dataset in the path,
or the datasets of the study in the path). Public routes are listed in :data:`PUBLIC`. A route in
neither table refuses everyone — forgetting a route locks it, never opens it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from coordinator.models import Study
from coordinator.principals import Identity, Role, authenticate
from coordinator.state import Coordinator
from federation.spec import StudySpec
from tillit.errors import Forbidden

__all__ = ["POLICY", "PUBLIC", "CoordinatorDep", "CurrentPrincipal", "Policy", "get_coordinator"]

Scope = Literal["dataset_path", "study_datasets"] | None
_STAFF: tuple[Role, ...] = ("admin", "privacy_officer", "analyst")


@dataclass(frozen=True)
class Policy:
    roles: tuple[Role, ...]
    #: which datasets a privacy officer or node must answer for (admins and analysts are not scoped)
    scope: Scope = None


PUBLIC = frozenset({"health", "public_register", "public_register_page", "signing_key"})

POLICY: dict[str, Policy] = {
    "whoami": Policy(("admin", "privacy_officer", "analyst", "node")),
    "create_principal": Policy(("admin",)),
    "list_principals": Policy(("admin",)),
    "enroll_node": Policy(("node",)),
    "list_nodes": Policy(("admin", "privacy_officer")),
    "report_validation": Policy(("node",), "dataset_path"),
    "list_datasets": Policy(_STAFF),
    "set_budget": Policy(("privacy_officer",), "dataset_path"),
    "list_budgets": Policy(_STAFF),
    "set_municipality_cap": Policy(("admin",)),
    "show_ledger": Policy(("admin", "privacy_officer")),
    "list_templates": Policy(_STAFF),
    "preview_cost": Policy(("analyst",)),
    "create_study": Policy(("analyst",)),
    "list_studies": Policy(_STAFF),
    "get_study": Policy(_STAFF),
    "approve_study": Policy(("privacy_officer",), "study_datasets"),
    "reject_study": Policy(("privacy_officer",), "study_datasets"),
    "run_study": Policy(("analyst",)),
    "study_results": Policy(_STAFF),
    "audit_log": Policy(("admin", "privacy_officer")),
    "audit_verify": Policy(("admin", "privacy_officer")),
}


def get_coordinator(request: Request) -> Coordinator:
    coordinator: Coordinator = request.app.state.coordinator
    return coordinator


CoordinatorDep = Annotated[Coordinator, Depends(get_coordinator)]
_bearer = HTTPBearer(auto_error=False, description="a token from `tillit principal add` (or the admin token file)")


def authorize(request: Request, coordinator: CoordinatorDep,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Identity:
    name = getattr(request.scope.get("route"), "name", "")
    with coordinator.db.transaction() as session:
        identity = authenticate(session, credentials.credentials if credentials else None)
        policy = POLICY.get(name)
        if policy is None:
            raise Forbidden(f"route {name or '?'} has no access policy; nobody may call it")
        if identity.role not in policy.roles:
            allowed = ", ".join(r.replace("_", " ") for r in policy.roles)
            raise Forbidden(f"{identity.name} (role {identity.role}) may not do this; it needs: {allowed}")
        if identity.role in ("privacy_officer", "node") and policy.scope is not None:
            wanted = _scoped_datasets(request, session, policy.scope)
            if wanted is not None and not (identity.datasets & wanted):
                raise Forbidden(f"{identity.name} does not answer for {', '.join(sorted(wanted)) or 'these datasets'}")
    return identity


def _scoped_datasets(request: Request, session: Session, scope: Scope) -> set[str] | None:
    params = request.path_params
    if scope == "dataset_path":
        return {f"{params['municipality']}/{params['sector']}"}
    study = session.get(Study, params["study_id"])
    if study is None:
        return None            # the route answers 404
    return set(StudySpec.model_validate_json(study.spec).datasets)


CurrentPrincipal = Annotated[Identity, Depends(authorize)]
