"""Every route × every role (and no token, and a forged token) gets the documented status.

The expected roles are written out here, not read from the service's policy table, so a change of
policy must be made in both places — and a route the table does not know fails the test.
"""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from tests.coordinator.conftest import PUBLIC_KEY, World

VERDICT = {"verdict": "pass", "rows": 10, "checks": 5, "failed_checks": 0, "warnings": 0,
           "contract_version": "1.0.0", "sha256": "0" * 64}

#: route name -> (method, path, body, roles allowed); None = public
MATRIX: dict[str, tuple[str, str, object, frozenset[str] | None]] = {
    "health": ("GET", "/healthz", None, None),
    "public_register": ("GET", "/v1/register", None, None),
    "public_register_page": ("GET", "/register", None, None),
    "signing_key": ("GET", "/v1/signing-key", None, None),
    "whoami": ("GET", "/v1/me", None, frozenset({"admin", "officer", "analyst", "node"})),
    "create_principal": ("POST", "/v1/principals", {"name": "new-{who}", "role": "analyst"}, frozenset({"admin"})),
    "list_principals": ("GET", "/v1/principals", None, frozenset({"admin"})),
    "revoke_principal": ("POST", "/v1/principals/vantaa-node/revoke", None, frozenset({"admin"})),
    "enroll_node": ("PUT", "/v1/nodes/espoo/health_care", {"contract": "health_care", "public_key": PUBLIC_KEY},
                    frozenset({"node"})),
    "list_nodes": ("GET", "/v1/nodes", None, frozenset({"admin", "officer"})),
    "report_validation": ("PUT", "/v1/datasets/espoo/health_care/validation", VERDICT, frozenset({"node"})),
    "list_datasets": ("GET", "/v1/datasets", None, frozenset({"admin", "officer", "analyst"})),
    "set_budget": ("PUT", "/v1/budgets/espoo/health_care/2024", {"epsilon": 5.0}, frozenset({"officer"})),
    "list_budgets": ("GET", "/v1/budgets", None, frozenset({"admin", "officer", "analyst"})),
    "set_municipality_cap": ("PUT", "/v1/caps/espoo/2024", {"epsilon": 10.0}, frozenset({"admin"})),
    "show_ledger": ("GET", "/v1/ledger", None, frozenset({"admin", "officer"})),
    "list_templates": ("GET", "/v1/templates", None, frozenset({"admin", "officer", "analyst"})),
    "preview_cost": ("POST", "/v1/studies/preview", "draft", frozenset({"analyst"})),
    "create_study": ("POST", "/v1/studies", "draft", frozenset({"analyst"})),
    "list_studies": ("GET", "/v1/studies", None, frozenset({"admin", "officer", "analyst"})),
    "get_study": ("GET", "/v1/studies/pending-study", None, frozenset({"admin", "officer", "analyst"})),
    "approve_study": ("POST", "/v1/studies/pending-study/approve", {"reason": "fits the plan"}, frozenset({"officer"})),
    "reject_study": ("POST", "/v1/studies/pending-study/reject", {"reason": "not now"}, frozenset({"officer"})),
    "run_study": ("POST", "/v1/studies/pending-study/run", None, frozenset({"analyst"})),
    "study_results": ("GET", "/v1/studies/pending-study/results", None, frozenset({"admin", "officer", "analyst"})),
    "study_report": ("GET", "/v1/studies/pending-study/report", None, frozenset({"admin", "officer", "analyst"})),
    "audit_log": ("GET", "/v1/audit", None, frozenset({"admin", "officer"})),
    "audit_verify": ("GET", "/v1/audit/verify", None, frozenset({"admin", "officer"})),
}
CALLERS = ("none", "forged", "admin", "officer", "analyst", "node")


def _call(world: World, name: str, who: str) -> tuple[int, dict[str, object] | str]:
    method, path, body, _ = MATRIX[name]
    special = {"none": {}, "forged": {"Authorization": "Bearer tlt_forged-token-that-was-never-issued"}}
    headers = special[who] if who in special else world.headers(who)
    if body == "draft":
        body = world.draft(f"study-{who}-{name.replace('_', '-')}")
    elif isinstance(body, dict):
        body = {k: v.format(who=who) if isinstance(v, str) else v for k, v in body.items()}
    response = world.client.request(method, path, json=body, headers=headers)
    is_json = response.headers.get("content-type", "").startswith("application/json")
    return response.status_code, response.json() if is_json else response.text


def test_the_matrix_covers_every_route(world: World) -> None:
    # every operation in the service's own OpenAPI document, by route name
    routes = {r.name for r in _api_routes(world.app.routes)}
    assert routes == set(MATRIX)
    assert len(world.app.openapi()["paths"]) == len({path for _, path, _, _ in MATRIX.values()})


def _api_routes(routes: list[object]) -> list[APIRoute]:
    """APIRoutes, also inside included routers (FastAPI may keep those as one entry per router)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += _api_routes(route.original_router.routes)
    return found


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_every_role_gets_the_documented_status(world: World, name: str) -> None:
    # Prepare: a pending study on Espoo's health data for the study routes
    created = world.client.post("/v1/studies", json=world.draft("pending-study"), headers=world.headers("analyst"))
    assert created.status_code == 201, created.text
    allowed = MATRIX[name][3]
    for who in CALLERS:
        # Execute
        status, body = _call(world, name, who)
        # Assert
        if allowed is None:
            assert status == 200, (name, who, status, body)
        elif who in ("none", "forged"):
            assert status == 401 and isinstance(body, dict) and body["error"] == "not_authenticated", (name, who, body)
        elif who not in allowed:
            assert status == 403 and isinstance(body, dict) and body["error"] == "forbidden", (name, who, body)
        else:
            assert status not in (401, 403) and status < 500, (name, who, status, body)


@pytest.mark.parametrize(("name", "who"), [("set_budget", "vantaa-officer"), ("approve_study", "vantaa-officer"),
                                           ("reject_study", "vantaa-officer"), ("report_validation", "vantaa-node"),
                                           ("enroll_node", "vantaa-node")])
def test_officers_and_nodes_act_only_on_their_own_datasets(world: World, name: str, who: str) -> None:
    # Prepare
    world.client.post("/v1/studies", json=world.draft("pending-study"), headers=world.headers("analyst"))
    # Execute
    status, body = _call(world, name, who)
    # Assert
    assert status == 403 and isinstance(body, dict), (status, body)
    assert "does not answer for espoo/health_care" in str(body["detail"])


def test_a_node_cannot_move_its_dataset_to_another_contract(world: World) -> None:
    # Prepare: the fixture's node enrolled espoo/health_care under the health_care contract
    # Execute
    response = world.client.put("/v1/nodes/espoo/health_care", json={"contract": "social_services",
                                                                     "public_key": PUBLIC_KEY},
                                headers=world.headers("node"))
    # Assert
    assert response.status_code == 409 and "enrolled under contract health_care" in response.json()["detail"]
