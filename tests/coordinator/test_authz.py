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
    "list_municipality_caps": ("GET", "/v1/caps", None, frozenset({"admin", "officer", "analyst"})),
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
STAFF = frozenset({"admin", "officer", "analyst"})
SIGNED_IN = frozenset({"admin", "officer", "analyst", "node"})

#: every web page (coordinator.web): route name -> (method, path, form, roles allowed); None = public. Forms get the
#: signed-in browser's CSRF token; the same policy table decides, so a change of policy is made here too.
PAGES: dict[str, tuple[str, str, dict[str, str] | None, frozenset[str] | None]] = {
    "public_register_page": ("GET", "/register", None, None),
    "public_register_export_json": ("GET", "/register/eurocities.json", None, None),
    "public_register_export_csv": ("GET", "/register/eurocities.csv", None, None),
    "web_sign_in_form": ("GET", "/sign-in", None, None),
    "web_sign_in": ("POST", "/sign-in", {"token": "x"}, None),
    "web_home": ("GET", "/", None, SIGNED_IN),
    "web_sign_out": ("POST", "/sign-out", {}, SIGNED_IN),
    "web_nodes": ("GET", "/nodes", None, SIGNED_IN),
    "web_datasets": ("GET", "/datasets", None, frozenset({"admin", "officer"})),
    "web_dataset": ("GET", "/datasets/espoo/health_care", None, frozenset({"admin", "officer"})),
    "web_set_budget": ("POST", "/datasets/espoo/health_care/budget", {"period": "2024", "epsilon": "4"},
                       frozenset({"officer"})),
    "web_approvals": ("GET", "/approvals", None, frozenset({"officer"})),
    "web_check_study": ("GET", "/studies/pending-study/check", None, frozenset({"officer"})),
    "web_decide_study": ("POST", "/studies/pending-study/decision", {"decision": "reject", "reason": "not now"},
                         frozenset({"officer"})),
    "web_ledger": ("GET", "/ledger", None, frozenset({"admin", "officer"})),
    "web_audit": ("GET", "/audit", None, frozenset({"admin", "officer"})),
    "web_principals": ("GET", "/principals", None, frozenset({"admin"})),
    "web_create_principal": ("POST", "/principals", {"name": "web-new-analyst", "role": "analyst"}, frozenset({"admin"})),
    "web_revoke_principal_check": ("GET", "/principals/vantaa-node/revoke", None, frozenset({"admin"})),
    "web_revoke_principal": ("POST", "/principals/vantaa-node/revoke", {}, frozenset({"admin"})),
    "web_caps": ("GET", "/caps", None, STAFF),
    "web_set_cap": ("POST", "/caps", {"municipality": "espoo", "period": "2024", "epsilon": "9"}, frozenset({"admin"})),
    "web_templates": ("GET", "/templates", None, STAFF),
    "web_new_study": ("GET", "/studies/new?template=health_transitions", None, frozenset({"analyst"})),
    "web_preview_study": ("POST", "/studies/preview", {"template": "health_transitions", "id": "web-preview",
                                                        "municipalities": "espoo"}, frozenset({"analyst"})),
    "web_create_study": ("POST", "/studies", {"template": "health_transitions", "id": "x"}, frozenset({"analyst"})),
    "web_studies": ("GET", "/studies", None, STAFF),
    "web_study": ("GET", "/studies/pending-study", None, STAFF),
    "web_study_progress": ("GET", "/studies/pending-study/progress", None, STAFF),
    "web_run_study": ("POST", "/studies/pending-study/run", {}, frozenset({"analyst"})),
    "web_study_download": ("GET", "/studies/pending-study/files/result.json", None, STAFF),
}


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
    # every route by name: the API's operations (all in the OpenAPI document) and the pages (none in it)
    routes = {r.name for r in _api_routes(world.app.routes)}
    assert routes == set(MATRIX) | set(PAGES)
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


def _page_call(world: World, name: str, who: str) -> tuple[int, str, str]:
    """A page as ``who`` sees it in a browser signed in as them (``none``: signed out)."""
    method, path, form, _ = PAGES[name]
    client = world.browser(None if who == "none" else who)
    if method == "GET":
        response = client.get(path, headers={"accept": "text/html"}, follow_redirects=False)
    else:
        data = {**(form or {}), "csrf": world.csrf(client)} if who != "none" else dict(form or {})
        response = client.post(path, data=data, headers={"accept": "text/html", "origin": "https://testserver"},
                               follow_redirects=False)
    return response.status_code, response.headers.get("location", ""), response.text


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_page_answers_each_role_as_the_policy_says(world: World, name: str) -> None:
    # Prepare: a pending study on Espoo's health data for the study pages
    created = world.client.post("/v1/studies", json=world.draft("pending-study"), headers=world.headers("analyst"))
    assert created.status_code == 201, created.text
    allowed = PAGES[name][3]
    for who in ("none", "admin", "officer", "analyst", "node"):
        # Execute
        status, location, body = _page_call(world, name, who)
        # Assert: signed out → the sign-in page; a role the table refuses → the 403 page; else no refusal
        if allowed is None:
            assert status in (200, 401, 403, 303) and status < 500, (name, who, status)
            if name not in ("web_sign_in", "web_sign_in_form"):   # a signed-in browser skips the sign-in form
                assert status == 200, (name, who, status)
        elif who == "none":
            assert status == 303 and location.startswith("/sign-in?next="), (name, status, location)
        elif who not in allowed:
            assert status == 403 and "<title>Error: You cannot see this page" in body, (name, who, status)
        else:
            assert status not in (401, 403) and status < 500, (name, who, status, body[:2000])
