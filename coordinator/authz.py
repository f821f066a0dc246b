"""Who may call what: one policy table and one dependency that enforces it for every route.

Each protected route is named in :data:`POLICY` with the roles allowed and, where it matters, the
scope: a privacy officer or node acts only on the datasets it answers for (a dataset in the path,
or the datasets of the study in the path). Public routes are listed in :data:`PUBLIC`. A route in
neither table refuses everyone — forgetting a route locks it, never opens it.

Authorization and the route share one database session per request (:data:`SessionDep`): what the
route does commits together, before the answer is sent, or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from common.errors import Forbidden
from coordinator.api_models import DATASET_ID
from coordinator.models import Study
from coordinator.principals import Identity, Role, authenticate
from coordinator.state import Coordinator
from federation.spec import StudySpec

__all__ = ["POLICY", "PUBLIC", "CoordinatorDep", "CurrentPrincipal", "Policy", "SessionDep", "authorize_identity",
           "get_coordinator"]

Scope = Literal["dataset_path", "study_datasets"] | None
_STAFF: tuple[Role, ...] = ("admin", "privacy_officer", "analyst")


@dataclass(frozen=True)
class Policy:
    roles: tuple[Role, ...]
    #: which datasets a privacy officer or node must answer for (admins and analysts are not scoped)
    scope: Scope = None


PUBLIC = frozenset({"health", "public_register", "public_register_page", "public_register_export_json",
                    "public_register_export_csv", "signing_key", "web_sign_in_form", "web_sign_in"})
_ANYONE_SIGNED_IN: tuple[Role, ...] = ("admin", "privacy_officer", "analyst", "node")

POLICY: dict[str, Policy] = {
    "whoami": Policy(("admin", "privacy_officer", "analyst", "node")),
    "create_principal": Policy(("admin",)),
    "list_principals": Policy(("admin",)),
    "revoke_principal": Policy(("admin",)),
    "enroll_node": Policy(("node",), "dataset_path"),
    "list_nodes": Policy(("admin", "privacy_officer")),
    "report_validation": Policy(("node",), "dataset_path"),
    "list_datasets": Policy(_STAFF),
    "set_budget": Policy(("privacy_officer",), "dataset_path"),
    "list_budgets": Policy(_STAFF),
    "set_municipality_cap": Policy(("admin",)),
    "list_municipality_caps": Policy(_STAFF),
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
    "study_report": Policy(_STAFF),
    "audit_log": Policy(("admin", "privacy_officer")),
    "audit_verify": Policy(("admin", "privacy_officer")),
    # -- web pages (coordinator.web): the same table, the same check ------------------------------------------
    "web_home": Policy(_ANYONE_SIGNED_IN),
    "web_sign_out": Policy(_ANYONE_SIGNED_IN),
    "web_nodes": Policy(_ANYONE_SIGNED_IN),
    "web_datasets": Policy(("admin", "privacy_officer")),
    "web_dataset": Policy(("admin", "privacy_officer"), "dataset_path"),
    "web_set_budget": Policy(("privacy_officer",), "dataset_path"),
    "web_approvals": Policy(("privacy_officer",)),
    "web_check_study": Policy(("privacy_officer",), "study_datasets"),
    "web_decide_study": Policy(("privacy_officer",), "study_datasets"),
    "web_ledger": Policy(("admin", "privacy_officer")),
    "web_principals": Policy(("admin",)),
    "web_create_principal": Policy(("admin",)),
    "web_revoke_principal_check": Policy(("admin",)),
    "web_revoke_principal": Policy(("admin",)),
    "web_caps": Policy(_STAFF),
    "web_set_cap": Policy(("admin",)),
    "web_audit": Policy(("admin", "privacy_officer")),
    "web_templates": Policy(_STAFF),
    "web_new_study": Policy(("analyst",)),
    "web_preview_study": Policy(("analyst",)),
    "web_create_study": Policy(("analyst",)),
    "web_studies": Policy(_STAFF),
    "web_study": Policy(_STAFF),
    "web_study_progress": Policy(_STAFF),
    "web_run_study": Policy(("analyst",)),
    "web_study_download": Policy(_STAFF),
}


def get_coordinator(request: Request) -> Coordinator:
    coordinator: Coordinator = request.app.state.coordinator
    return coordinator


CoordinatorDep = Annotated[Coordinator, Depends(get_coordinator)]


def _session(coordinator: CoordinatorDep) -> Iterator[Session]:
    with coordinator.db.unit_of_work() as session:
        yield session


#: the request's database session: commits after the route returns and before the answer is sent
SessionDep = Annotated[Session, Depends(_session, scope="function")]
_bearer = HTTPBearer(auto_error=False, description="a token from `tillit principal add` (or the admin token file)")


def authorize_identity(session: Session, identity: Identity, route: str, path_params: dict[str, str]) -> Identity:
    """Whether ``identity`` may call ``route`` with these path parameters (Forbidden if not); the one check
    behind every protected route and page."""
    policy = POLICY.get(route)
    if policy is None:
        raise Forbidden(f"route {route or '?'} has no access policy; nobody may call it")
    if identity.role not in policy.roles:
        allowed = ", ".join(r.replace("_", " ") for r in policy.roles)
        raise Forbidden(f"{identity.name} (role {identity.role}) may not do this; it needs: {allowed}")
    if identity.role in ("privacy_officer", "node") and policy.scope is not None:
        wanted = _scoped_datasets(path_params, session, policy.scope)
        if wanted is not None and not (identity.datasets & wanted):
            raise Forbidden(f"{identity.name} does not answer for {', '.join(sorted(wanted)) or 'these datasets'}")
    return identity


def authorize(request: Request, session: SessionDep,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Identity:
    identity = authenticate(session, credentials.credentials if credentials else None)
    route = getattr(request.scope.get("route"), "name", "")
    return authorize_identity(session, identity, route, dict(request.path_params))


def _scoped_datasets(params: dict[str, str], session: Session, scope: Scope) -> set[str] | None:
    if scope == "dataset_path":
        dataset = f"{params['municipality']}/{params['sector']}"
        if not re.fullmatch(DATASET_ID, dataset):
            # authorization runs before the route's own parameter checks: answer their 422 here rather than a
            # refusal that would repeat a malformed (NUL, CRLF, 15,000-character) name back
            raise RequestValidationError([{"type": "string_pattern_mismatch", "loc": ("path", "dataset"),
                                           "msg": f"String should match pattern '{DATASET_ID}'"}])
        return {dataset}
    study = session.get(Study, params["study_id"])
    if study is None:
        return None            # the route answers 404
    return set(StudySpec.model_validate_json(study.spec).datasets)


CurrentPrincipal = Annotated[Identity, Depends(authorize)]
