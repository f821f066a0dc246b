"""The web pages in process: sign-in sessions, CSRF and Origin checks, revocation and idle expiry, the API
ignoring cookies, decisions and budgets through forms, error pages, the CSP, the register's export.

The browser tests (``tests/browser``) drive the same pages in Chromium against real processes.
"""

from __future__ import annotations

import csv
import io
import json
import re

from sqlalchemy import select, text

from coordinator.models import AuditEntry, WebSession
from coordinator.principals import revoke_principal
from tests.coordinator.conftest import World

ORIGIN = {"origin": "https://testserver", "accept": "text/html"}


def _audit_actions(world: World) -> list[tuple[str, str]]:
    with world.coordinator.db.transaction() as session:
        return [(e.action, e.actor) for e in session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars()]


def test_sign_in_sets_an_opaque_strict_cookie_and_stores_only_its_hash(world: World) -> None:
    # Prepare
    client = world.browser()
    form = client.get("/sign-in")
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce is not None
    # Execute
    answer = client.post("/sign-in", data={"nonce": nonce.group(1), "token": world.tokens["officer"],
                                           "next": "/approvals"}, headers=ORIGIN, follow_redirects=False)
    # Assert
    assert answer.status_code == 303 and answer.headers["location"] == "/approvals"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("tillit_session="))
    assert all(flag in cookie for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"))
    session_id = cookie.split(";")[0].split("=", 1)[1]
    assert world.tokens["officer"] not in answer.headers.get("set-cookie", "")
    with world.coordinator.db.transaction() as session:
        stored = [row.id_hash for row in session.execute(select(WebSession)).scalars()]
    assert len(stored) == 1 and session_id not in stored[0] and len(stored[0]) == 64
    assert ("web.signed_in", "officer") in _audit_actions(world)
    assert client.get("/approvals").status_code == 200


def test_a_wrong_token_shows_the_error_summary_above_the_heading(world: World) -> None:
    client = world.browser()
    nonce = re.search(r'name="nonce" value="([^"]+)"', client.get("/sign-in").text)
    assert nonce is not None
    page = client.post("/sign-in", data={"nonce": nonce.group(1), "token": "tlt_wrong"}, headers=ORIGIN)
    assert page.status_code == 401
    assert "<title>Error: Sign in" in page.text
    assert page.text.index('class="error-summary"') < page.text.index("<h1>")
    assert 'href="#token"' in page.text and 'aria-invalid="true"' in page.text


def test_a_forged_form_without_its_csrf_token_or_from_another_site_is_refused(world: World) -> None:
    # Prepare: an officer's browser and a pending study
    world.client.post("/v1/studies", json=world.draft("pending-study"), headers=world.headers("analyst"))
    client = world.browser("officer")
    good = {"decision": "approve", "reason": "fits the plan", "csrf": world.csrf(client)}
    # Execute
    without_token = client.post("/studies/pending-study/decision", data={**good, "csrf": ""}, headers=ORIGIN)
    other_site = client.post("/studies/pending-study/decision", data=good,
                             headers={**ORIGIN, "origin": "https://evil.example"})
    no_origin = client.post("/studies/pending-study/decision", data=good, headers={"accept": "text/html"})
    sign_in_without_nonce = world.browser().post("/sign-in", data={"token": world.tokens["officer"]}, headers=ORIGIN)
    # Assert: each refused with the error page, nothing decided
    for answer in (without_token, other_site, no_origin, sign_in_without_nonce):
        assert answer.status_code == 403 and "<title>Error: The form could not be sent" in answer.text
    study = world.client.get("/v1/studies/pending-study", headers=world.headers("officer")).json()
    assert study["status"] == "pending" and study["approvals"] == []


def test_the_json_api_ignores_the_session_cookie(world: World) -> None:
    client = world.browser("admin")
    assert client.get("/").status_code == 200
    answer = client.get("/v1/me")
    assert answer.status_code == 401 and answer.json()["error"] == "not_authenticated"


def test_a_revoked_principals_session_stops_at_once(world: World) -> None:
    # Prepare
    client = world.browser("analyst")
    assert client.get("/studies").status_code == 200
    # Execute
    with world.coordinator.db.transaction() as session:
        revoke_principal(world.coordinator.signer, session, "admin", "analyst")
    answer = client.get("/studies", follow_redirects=False)
    # Assert
    assert answer.status_code == 303 and answer.headers["location"].startswith("/sign-in?next=/studies")


def test_an_idle_session_ends_and_the_sign_in_page_says_so(world: World) -> None:
    client = world.browser("officer")
    with world.coordinator.db.transaction() as session:
        session.execute(text("UPDATE web_sessions SET last_seen_at = '2000-01-01T00:00:00+00:00'"))
    answer = client.get("/ledger", follow_redirects=False)
    assert answer.status_code == 303 and "notice=ended" in answer.headers["location"]
    assert "Your session has ended" in client.get(answer.headers["location"]).text


def test_signing_out_ends_the_session_for_good(world: World) -> None:
    client = world.browser("officer")
    cookie = client.cookies.get("tillit_session")
    answer = client.post("/sign-out", data={"csrf": world.csrf(client)}, headers=ORIGIN, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/sign-in?notice=out"
    replay = world.browser()
    replay.cookies.set("tillit_session", cookie or "", domain="testserver.local")
    assert replay.get("/ledger", follow_redirects=False).status_code == 303
    assert ("web.signed_out", "officer") in _audit_actions(world)


def test_an_officer_approves_through_the_form_and_the_audit_log_has_the_reason(world: World) -> None:
    # Prepare
    world.client.post("/v1/studies", json=world.draft("pending-study"), headers=world.headers("analyst"))
    client = world.browser("officer")
    budget = client.post("/datasets/espoo/health_care/budget", data={"period": "2024", "epsilon": "3",
                                                                     "csrf": world.csrf(client)}, headers=ORIGIN)
    assert budget.status_code == 200 and "Budget set: ε 3.00 for espoo/health_care, period 2024." in budget.text
    check = client.get("/studies/pending-study/check")
    assert "each released count ±" in check.text and 'class="plot budget"' in check.text
    assert "ε 1.00 (δ 1e-06), which counts against the budget (adding up ρ) as ε 1.08" in check.text
    # Execute: first without a reason (refused, the error summary links to the field), then with one
    empty = client.post("/studies/pending-study/decision", data={"decision": "approve", "reason": "",
                                                                 "csrf": world.csrf(client)}, headers=ORIGIN)
    done = client.post("/studies/pending-study/decision", data={"decision": "approve", "reason": "within mandate",
                                                                "csrf": world.csrf(client)}, headers=ORIGIN)
    # Assert
    assert empty.status_code == 422 and 'href="#reason"' in empty.text and "<title>Error:" in empty.text
    assert done.status_code == 200 and "You approved pending-study." in done.text
    with world.coordinator.db.transaction() as session:
        approved = session.execute(select(AuditEntry).where(AuditEntry.action == "study.approved")).scalar_one()
    assert approved.actor == "officer" and json.loads(approved.payload)["reason"] == "within mandate"
    dataset = client.get("/datasets/espoo/health_care").text
    assert 'class="plot step"' in dataset and "study pending-study approved: ε 1.00 for the study" in dataset
    assert "charged as ε 1.08 against the budget" in dataset


def test_pages_have_a_strict_csp_and_no_inline_script_or_style(world: World) -> None:
    world.client.post("/v1/studies", json=world.draft("pending-study"), headers=world.headers("analyst"))
    officer, analyst = world.browser("officer"), world.browser("analyst")
    for client, path in ((officer, "/"), (officer, "/approvals"), (officer, "/studies/pending-study/check"),
                         (officer, "/datasets/espoo/health_care"), (officer, "/audit"), (analyst, "/studies/new"),
                         (analyst, "/studies/pending-study"), (world.browser(), "/register"), (world.browser(), "/sign-in")):
        page = client.get(path)
        assert page.status_code == 200, path
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy and "unsafe" not in policy
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), path
        assert not re.search(r"<style|\sstyle=", page.text), path
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page.text), path


def test_an_unknown_page_is_an_html_page_and_an_unknown_api_route_stays_json(world: World) -> None:
    page = world.browser().get("/no-such-page", headers={"accept": "text/html"})
    api = world.client.get("/v1/no-such-route")
    assert page.status_code == 404 and "<title>Error: Page not found" in page.text
    assert api.status_code == 404 and api.json()["error"] == "not_found"


def test_the_register_exports_the_eurocities_fields(world: World) -> None:
    # Prepare: an approved study
    world.client.post("/v1/studies", json=world.draft("pending-study"), headers=world.headers("analyst"))
    world.client.put("/v1/budgets/espoo/health_care/2024", json={"epsilon": 3}, headers=world.headers("officer"))
    approved = world.client.post("/v1/studies/pending-study/approve", json={"reason": "fits the plan"},
                                headers=world.headers("officer"))
    assert approved.status_code == 200, approved.text
    # Execute
    records = world.client.get("/register/eurocities.json").json()
    rows = list(csv.DictReader(io.StringIO(world.client.get("/register/eurocities.csv").text)))
    page = world.client.get("/register").text
    # Assert
    assert rows == records and len(records) == 1
    record = records[0]
    assert record["uuid"] == "pending-study" and record["standard_version"] == "0.3.1"
    assert record["lawful_basis"].startswith("Act on the secondary use")
    assert "ε 1.00 for the residents in espoo/health_care" in record["proportionality"]
    assert page.index("<h3>Summary</h3>") < page.index("<h3>Data</h3>") < page.index("<h3>Model</h3>") \
        < page.index("<h3>Non-discrimination</h3>") < page.index("<h3>Human oversight</h3>") \
        < page.index("<h3>Risks</h3>") < page.index("<h3>Contact</h3>")
    assert '"epsilon"' not in page and 'class="plot budget"' in page
