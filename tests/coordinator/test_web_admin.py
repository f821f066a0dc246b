"""An admin's pages in process: principals added through the form (the token shown once, on a page nobody
keeps), refused field by field with nothing written, revoked after a confirmation; municipality caps set by an
admin, read by privacy officers; every other role refused."""

from __future__ import annotations

import re

from sqlalchemy import func, select, text

from coordinator.models import AuditEntry, MunicipalityCap, Principal
from tests.coordinator.conftest import World

ORIGIN = {"origin": "https://testserver", "accept": "text/html"}


def _counts(world: World) -> tuple[int, int, int]:
    """Principals, audit entries and municipality caps stored."""
    with world.coordinator.db.transaction() as session:
        return tuple(session.execute(select(func.count()).select_from(model)).scalar_one()   # type: ignore[return-value]
                     for model in (Principal, AuditEntry, MunicipalityCap))


def _error_fields(page: str) -> list[str]:
    summary = page.split('class="error-summary"', 1)[1].split("</div>", 1)[0]
    return re.findall(r'href="#([^"]+)"', summary)


def test_an_admin_adds_a_principal_and_sees_its_token_once_on_a_page_no_cache_keeps(world: World) -> None:
    # Prepare
    client = world.browser("admin")
    form = {"name": "vantaa.analyst", "role": "analyst", "datasets": "", "csrf": world.csrf(client)}
    # Execute
    answer = client.post("/principals", data=form, headers=ORIGIN)
    listing = client.get("/principals")
    # Assert: the token works on the API as the new analyst, is on the created page only, and the page is not kept
    token = re.search(r'id="token" type="text" value="(tlt_[^"]+)"', answer.text)
    assert answer.status_code == 201 and token is not None
    assert answer.headers["cache-control"] == "no-store" and answer.headers["referrer-policy"] == "no-referrer"
    me = world.client.get("/v1/me", headers={"Authorization": f"Bearer {token.group(1)}"}).json()
    assert me == {"name": "vantaa.analyst", "role": "analyst", "datasets": []}
    assert listing.status_code == 200 and "vantaa.analyst" in listing.text and token.group(1) not in listing.text
    with world.coordinator.db.transaction() as session:
        last = session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).scalar_one()
    assert (last.action, last.actor, last.subject) == ("principal.created", "admin", "vantaa.analyst")


def test_an_officer_for_a_dataset_no_node_has_enrolled_yet_is_added_with_a_notice(world: World) -> None:
    # Prepare
    client = world.browser("admin")
    form = {"name": "turku-officer", "role": "privacy_officer", "datasets": "turku/health_care, espoo/health_care",
            "csrf": world.csrf(client)}
    # Execute
    answer = client.post("/principals", data=form, headers=ORIGIN)
    # Assert
    assert answer.status_code == 201
    assert "Answers for: espoo/health_care, turku/health_care." in answer.text
    assert "Not registered yet: turku/health_care." in answer.text


def test_a_principal_form_with_wrong_fields_is_refused_field_by_field_and_writes_nothing(world: World) -> None:
    # Prepare
    client = world.browser("admin")
    csrf = world.csrf(client)
    before = _counts(world)
    cases = [({"name": "X", "role": "", "datasets": "Espoo/Health"}, 422, ["name", "role-admin", "datasets"]),
             ({"name": "officer", "role": "analyst", "datasets": ""}, 409, ["name"]),
             ({"name": "new-officer", "role": "privacy_officer", "datasets": ""}, 422, ["datasets"]),
             ({"name": "new-analyst", "role": "analyst", "datasets": "espoo/health_care"}, 422, ["datasets"])]
    # Execute
    answers = [client.post("/principals", data={**form, "csrf": csrf}, headers=ORIGIN) for form, _, _ in cases]
    # Assert: each page says what is wrong beside the field it concerns, keeps what was typed, stores nothing
    for (form, status, fields), answer in zip(cases, answers):
        assert answer.status_code == status, (form, answer.text[:300])
        assert "<title>Error: Principals" in answer.text and _error_fields(answer.text) == fields
        assert f'value="{form["name"]}"' in answer.text
    assert "exists already" in answers[1].text and "must be given the datasets" in answers[2].text
    assert "answers for no dataset" in answers[3].text
    assert _counts(world) == before


def test_the_api_answer_that_carries_a_new_token_is_not_cached(world: World) -> None:
    # Execute
    answer = world.client.post("/v1/principals", json={"name": "api-analyst", "role": "analyst"},
                               headers=world.headers("admin"))
    # Assert
    assert answer.status_code == 201 and answer.json()["token"].startswith("tlt_")
    assert answer.headers["cache-control"] == "no-store"


def test_the_api_refuses_datasets_for_a_role_that_answers_for_none(world: World) -> None:
    # Execute
    answer = world.client.post("/v1/principals", json={"name": "scoped-analyst", "role": "analyst",
                                                       "datasets": ["espoo/health_care"]}, headers=world.headers("admin"))
    # Assert
    assert answer.status_code == 400 and answer.json()["error"] == "usage_error"
    assert "answers for no dataset" in answer.json()["detail"]


def test_an_admin_revokes_a_principal_after_a_confirmation_and_their_access_ends(world: World) -> None:
    # Prepare: the analyst is signed in in their own browser
    admin, analyst = world.browser("admin"), world.browser("analyst")
    assert analyst.get("/studies").status_code == 200
    # Execute
    confirmation = admin.get("/principals/analyst/revoke")
    answer = admin.post("/principals/analyst/revoke", data={"csrf": world.csrf(admin)}, headers=ORIGIN,
                        follow_redirects=False)
    listing = admin.get(answer.headers["location"])
    # Assert: the confirmation says what follows; afterwards the token and the session are refused
    assert confirmation.status_code == 200 and "It cannot be undone" in confirmation.text
    assert "Revoke analyst</button>" in confirmation.text
    assert answer.status_code == 303 and answer.headers["location"] == "/principals?revoked=analyst"
    assert "analyst is revoked: their token and browser sessions no longer work." in listing.text
    assert world.client.get("/v1/me", headers=world.headers("analyst")).status_code == 401
    assert analyst.get("/studies", follow_redirects=False).status_code == 303
    assert "/principals/analyst/revoke" not in listing.text


def test_the_last_admin_cannot_be_revoked_from_the_page_and_stays_signed_in(world: World) -> None:
    # Prepare
    client = world.browser("admin")
    before = _counts(world)
    # Execute
    answer = client.post("/principals/admin/revoke", data={"csrf": world.csrf(client)}, headers=ORIGIN)
    again = client.post("/principals/analyst/revoke", data={"csrf": world.csrf(client)}, headers=ORIGIN)
    twice = client.post("/principals/analyst/revoke", data={"csrf": world.csrf(client)}, headers=ORIGIN)
    unknown = client.get("/principals/nobody/revoke")
    # Assert
    assert answer.status_code == 409 and "last active admin" in answer.text and "<title>Error:" in answer.text
    assert again.status_code == 200 and twice.status_code == 409 and "revoked already" in twice.text
    assert unknown.status_code == 404 and "There is no principal named nobody." in unknown.text
    assert _counts(world)[0] == before[0] and client.get("/principals").status_code == 200


def test_an_admin_sets_a_municipality_cap_and_an_officer_reads_it_but_cannot_set_one(world: World) -> None:
    # Prepare
    admin, officer = world.browser("admin"), world.browser("officer")
    # Execute
    answer = admin.post("/caps", data={"municipality": "espoo", "period": "2024", "epsilon": "2",
                                       "csrf": world.csrf(admin)}, headers=ORIGIN, follow_redirects=False)
    saved = admin.get(answer.headers["location"])
    seen = officer.get("/caps")
    refused = officer.post("/caps", data={"municipality": "espoo", "period": "2024", "epsilon": "50",
                                          "csrf": world.csrf(officer)}, headers=ORIGIN)
    listed = world.client.get("/v1/caps", headers=world.headers("analyst")).json()
    # Assert
    assert answer.status_code == 303 and answer.headers["location"] == "/caps?saved=espoo@2024"
    assert "Cap set: ε 2.00 for espoo, period 2024." in saved.text
    assert seen.status_code == 200 and "<th scope=\"row\">espoo</th>" in seen.text and 'action="/caps"' not in seen.text
    assert refused.status_code == 403
    assert [(c["municipality"], c["period"], round(c["cap"]["epsilon"], 6)) for c in listed] == [("espoo", "2024", 2.0)]


def test_a_cap_form_with_wrong_fields_is_refused_field_by_field_and_writes_nothing(world: World) -> None:
    # Prepare
    client = world.browser("admin")
    before = _counts(world)
    # Execute
    answer = client.post("/caps", data={"municipality": "Espoo!", "period": "20 24", "epsilon": "1000",
                                        "csrf": world.csrf(client)}, headers=ORIGIN)
    # Assert
    assert answer.status_code == 422 and _error_fields(answer.text) == ["municipality", "period", "epsilon"]
    assert _counts(world) == before


def test_the_admin_pages_refuse_every_other_role(world: World) -> None:
    for who in ("officer", "analyst", "node"):
        # Prepare
        client = world.browser(who)
        # Execute
        pages = [client.get("/principals"), client.get("/principals/analyst/revoke"),
                 client.post("/principals", data={"name": "x-y", "role": "admin", "csrf": world.csrf(client)},
                             headers=ORIGIN)]
        # Assert
        assert [p.status_code for p in pages] == [403, 403, 403], who
        assert "Principals" not in client.get("/").text.split("</nav>")[0]


def test_more_datasets_than_a_principal_may_hold_is_a_field_error_not_a_crash(world: World) -> None:
    # Prepare: one field split into 201 datasets (the form's own field limit does not see them)
    client = world.browser("admin")
    before = _counts(world)
    datasets = ", ".join(f"espoo/s{k}" for k in range(201))
    # Execute
    answer = client.post("/principals", data={"name": "many", "role": "privacy_officer", "datasets": datasets,
                                              "csrf": world.csrf(client)}, headers=ORIGIN)
    # Assert
    assert answer.status_code == 422 and _error_fields(answer.text) == ["datasets"]
    assert "Give at most 200 datasets" in answer.text and _counts(world) == before


def test_a_conflict_other_than_a_taken_name_is_the_error_page_not_the_name_field(world: World) -> None:
    # Prepare: the audit chain's head no longer matches its last entry (tampering), so every append is refused
    client = world.browser("admin")
    csrf = world.csrf(client)
    with world.coordinator.db.transaction() as session:
        session.execute(text("UPDATE chain_head SET seq = seq + 1"))
    before = _counts(world)
    # Execute
    answer = client.post("/principals", data={"name": "after-tamper", "role": "analyst", "csrf": csrf},
                         headers=ORIGIN)
    # Assert: the 409 error page with the chain's reason, not the form with the name marked; nothing added
    assert answer.status_code == 409 and "<title>Error: That cannot be done now" in answer.text
    assert "audit chain" in answer.text and 'href="#name"' not in answer.text and 'id="name"' not in answer.text
    assert _counts(world) == before


def test_the_api_takes_only_dataset_ids_and_stores_each_once(world: World) -> None:
    # Execute
    refused = world.client.post("/v1/principals", json={"name": "odd-node", "role": "node",
                                                        "datasets": ["Espoo/Health"]}, headers=world.headers("admin"))
    twice = world.client.post("/v1/principals", json={"name": "twice-node", "role": "node",
                                                      "datasets": ["espoo/health_care", "espoo/health_care"]},
                              headers=world.headers("admin"))
    # Assert
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_request"
    assert twice.status_code == 201 and twice.json()["datasets"] == ["espoo/health_care"]
    listed = world.client.get("/v1/principals", headers=world.headers("admin")).json()
    assert next(p for p in listed if p["name"] == "twice-node")["datasets"] == ["espoo/health_care"]
    assert all(p["name"] != "odd-node" for p in listed)


def test_the_revoked_banner_shows_only_for_a_principal_that_is_revoked(world: World) -> None:
    # Prepare
    client = world.browser("admin")
    # Execute
    active, unknown = client.get("/principals?revoked=officer"), client.get("/principals?revoked=nobody")
    # Assert: a link cannot make the page claim a revocation that did not happen
    assert active.status_code == unknown.status_code == 200
    assert "is revoked" not in active.text and "is revoked" not in unknown.text


def test_the_last_admin_is_told_why_instead_of_offered_a_revoke_button(world: World) -> None:
    # Execute
    page = world.browser("admin").get("/principals/admin/revoke")
    # Assert
    assert page.status_code == 200 and "is the last active admin and cannot be revoked" in page.text
    assert 'action="/principals/admin/revoke"' not in page.text
