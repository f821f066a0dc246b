"""The web pages in a real browser: Debian's Chromium, headless, driven by Playwright, against a coordinator and a
real health-care node (Flower SuperLink and SuperNode, TLS, signed specs) started here.

An officer signs in and sets a budget; an analyst drafts a study and sees its cost previewed as the form fills;
the officer approves it with the keyboard alone (Tab, Space, Enter); the study runs; the analyst sees its results
and downloads them. An admin adds a principal (its token shown once), revokes it after a confirmation and sets a
municipality's cap. An analyst gets the 403 page for the approval page; a form without its CSRF token is refused;
the public register reads signed out. On every page axe-core (vendored from npm, ``vendor/axe.min.js``) must find
no violation, and the browser must report no Content-Security-Policy violation. Screenshots go to the test's
temporary directory (the path is printed).

Skipped only where Debian's Chromium (/usr/bin/chromium) is absent; ``make test`` says so, and CI installs it.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from federation.processes import FlowerProcess, flower_env, free_port, wait_for_port
from federation.signing import make_signing_key
from tests.conftest import Municipality
from tillit.cli import main
from tillit.local import LocalFederation, NodeSetup

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium; make test "
                "installs it where it can)", allow_module_level=True)

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.browser]

DATASET = "espoo/health_care"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
#: the flags this machine's Chromium needs (no sandbox as root; no calls to Google's services on a closed network)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
STUDY = {"id": "web-transitions-2024", "name": "Health-segment transitions from the browser",
         "purpose": "Plan health and care services for the next decade",
         "legal_basis": "Act on the secondary use of health and social data (552/2019)",
         "organisation": "City of Espoo, social and health services", "contact": "planning@espoo.example",
         "period": "2024", "municipalities": "espoo", "epsilon": "1"}


@dataclass
class Site:
    url: str
    state: Path
    tokens: dict[str, str]
    shots: Path
    browser: Browser
    checked: list[str] = field(default_factory=list)

    def context(self) -> BrowserContext:
        context = self.browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        context.add_init_script(path=str(AXE))   # through the DevTools protocol: the pages' CSP stays as it is
        return context


def _cli(url: str, token_file: Path | None, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main([*args, "--coordinator", url, *(["--token-file", str(token_file)] if token_file else [])])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, municipality: Municipality) -> Iterator[Site]:
    """A coordinator (over http on 127.0.0.1, which Chromium treats as a secure context, so the Secure cookie
    works), one health-care node on a TLS SuperLink, principals for each role, the node enrolled."""
    root = tmp_path_factory.mktemp("web")
    state = root / "coordinator"
    state.mkdir(mode=0o700)
    make_signing_key(state / "keys" / "study-signing.key")
    fed = LocalFederation(root / "fed", [NodeSetup(DATASET, "health_care", municipality.silo("health_care"),
                                                   epsilon_cap=5.0)],
                          coordinator_key=state / "keys" / "study-signing.pub")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    coordinator: FlowerProcess | None = None
    shots = root / "screenshots"
    shots.mkdir()
    print(f"\nbrowser test screenshots: {shots}")
    try:
        fed.start()
        command = [str(Path(sys.executable).parent / "tillit"), "coordinator", "serve", "--state", str(state),
                   "--port", str(port), "--superlink", fed.superlink_address,
                   "--root-certificates", str(fed.workdir / "pki" / "ca.crt")]
        coordinator = FlowerProcess.start("coordinator", command, flower_env(state / "home"), root / "coordinator.log",
                                          root)
        wait_for_port(port, 60, coordinator.process)
        tokens = {"admin": (state / "admin.token").read_text().strip()}
        for name, role, datasets in (("officer", "privacy_officer", DATASET), ("analyst", "analyst", ""),
                                     ("node", "node", DATASET)):
            code, out = _cli(url, state / "admin.token", "principal", "add", "--name", name, "--role", role,
                             *(["--datasets", datasets] if datasets else []))
            assert code == 0, out
            tokens[name] = out.strip().splitlines()[-1]
            (root / f"{name}.token").write_text(tokens[name])
        node_config = fed.workdir / "nodes" / "espoo-health_care" / "node.toml"
        code, out = _cli(url, root / "node.token", "node", "enroll", "--config", str(node_config))
        assert code == 0, out
        verdict = {"verdict": "pass", "rows": 20_000, "checks": 18, "failed_checks": 0, "warnings": 0,
                   "contract_version": "1.0.0", "sha256": "0" * 64}    # counts only, as a node reports them
        answer = httpx.put(f"{url}/v1/datasets/{DATASET}/validation", json=verdict, timeout=30,
                           headers={"Authorization": f"Bearer {tokens['node']}"})
        assert answer.status_code == 200, answer.text
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
            try:
                yield Site(url, state, tokens, shots, browser)
            finally:
                browser.close()
    finally:
        if coordinator is not None:
            coordinator.stop()
        fed.stop()


def _checked(site: Site, page: Page, name: str) -> None:
    """axe-core on the page as it is now: no violation; and a full-page screenshot."""
    page.wait_for_load_state()
    violations: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => (
             {id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))""")
    shot = site.shots / f"{len(site.checked) + 1:02d}-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    site.checked.append(f"{name} ({page.url})")
    assert violations == [], f"axe on {name} ({page.url}): {json.dumps(violations, indent=1)}"


def _follow(page: Page, selector: str) -> None:
    """Click a link or a form's button and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


def _watch_csp(page: Page) -> list[str]:
    """The page's console errors about the Content-Security-Policy (none expected)."""
    found: list[str] = []
    page.on("console", lambda message: found.append(message.text)
            if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text else None)
    return found


def _sign_in(site: Site, page: Page, who: str, name: str | None = None) -> None:
    page.goto(site.url + "/sign-in")
    if name:
        _checked(site, page, name)
    page.fill("#token", site.tokens[who])
    page.press("#token", "Enter")
    page.wait_for_url(site.url + "/")
    assert "Signed in as " + who in page.inner_text("header")


def _tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element ``selector`` has the focus (the keyboard alone)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement === document.querySelector(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_the_public_register_is_readable_signed_out(site: Site) -> None:
    # Prepare
    context = site.context()
    page = context.new_page()
    csp = _watch_csp(page)
    # Execute
    answer = page.goto(site.url + "/register")
    # Assert
    assert answer is not None and answer.status == 200
    assert page.inner_text("h1") == "Public study register" and "Sign in" in page.inner_text("header")
    _checked(site, page, "register-signed-out")
    assert csp == []
    context.close()


def test_a_study_from_budget_to_downloaded_results(site: Site) -> None:
    officer_context, analyst_context = site.context(), site.context()
    officer, analyst = officer_context.new_page(), analyst_context.new_page()
    csp_lists = [_watch_csp(officer), _watch_csp(analyst)]
    # an officer signs in and sets a budget
    _sign_in(site, officer, "officer", "sign-in")
    _checked(site, officer, "officer-home")
    _follow(officer, "text=Your datasets")
    _checked(site, officer, "datasets")
    _follow(officer, f"a[href='/datasets/{DATASET}']")
    _checked(site, officer, "dataset-no-budget")
    officer.fill("#period", "2024")
    officer.fill("#epsilon", "3")
    _follow(officer, "button:has-text('Save the budget')")
    assert "Budget set: ε 3.00 for espoo/health_care, period 2024." in officer.inner_text(".banner")
    _checked(site, officer, "dataset-budget-set")
    # an analyst drafts a study and sees the cost preview (htmx, as the form is filled in)
    _sign_in(site, analyst, "analyst")
    _follow(analyst, "text=Templates")
    _checked(site, analyst, "templates")
    _follow(analyst, "a[href='/studies/new?template=health_transitions']")
    for name, value in STUDY.items():
        analyst.fill(f"#{name}", value)
    analyst.locator("#cost-preview", has_text="each released count").wait_for(timeout=20_000)
    preview = analyst.inner_text("#cost-preview")
    assert "ε 1.00" in preview and "fits in the budget" in preview and DATASET in preview
    _checked(site, analyst, "new-study-with-preview")
    analyst.click("button:has-text('Submit for approval')")
    analyst.wait_for_url(f"{site.url}/studies/{STUDY['id']}?created=1")
    assert "pending" in analyst.inner_text(".summary-list").lower()
    _checked(site, analyst, "study-pending")
    # the officer approves it with the keyboard alone
    officer.goto(site.url + "/approvals")
    _checked(site, officer, "approvals")
    officer.locator("body").focus()
    _tab_to(officer, f"a[href='/studies/{STUDY['id']}/check']")
    officer.keyboard.press("Enter")
    officer.wait_for_url(f"{site.url}/studies/{STUDY['id']}/check")
    assert "each released count ±" in officer.inner_text("main")
    _checked(site, officer, "check-before-deciding")
    _tab_to(officer, "#decision-approve")
    officer.keyboard.press("Space")
    _tab_to(officer, "#reason")
    officer.keyboard.type("Within the service-planning mandate")
    _tab_to(officer, "form[action$='/decision'] button[type=submit]")
    officer.keyboard.press("Enter")
    officer.wait_for_url(f"{site.url}/approvals?done={STUDY['id']}&decision=approve")
    assert f"You approved {STUDY['id']}." in officer.inner_text(".banner")
    _checked(site, officer, "approved")
    officer.goto(f"{site.url}/datasets/{DATASET}")
    assert "approved: ε 1.00 for the study" in officer.inner_text("main")
    _checked(site, officer, "dataset-after-charge")
    for path, name, says in (("/ledger", "ledger", "web-transitions-2024"), ("/audit", "audit", "The audit log is intact"),
                              ("/nodes", "nodes", "pass: 20,000 rows")):
        officer.goto(site.url + path)
        assert says in officer.inner_text("main"), path
        _checked(site, officer, name)
    # the analyst runs it, follows its progress and reads its results
    analyst.goto(f"{site.url}/studies/{STUDY['id']}")
    _checked(site, analyst, "study-approved")
    _follow(analyst, "button:has-text('Run the study')")
    analyst.wait_for_selector("#results-title", timeout=600_000)   # htmx polls, then reloads the page
    _checked(site, analyst, "study-results")
    figures = analyst.locator("figure.plot svg[role=img]")
    assert figures.count() >= 4 + 4 + 1
    assert "Data table" in analyst.inner_text("main")
    files = {}
    for link in ("result.json", "report.html", "transitions.csv", "projection.csv"):
        with analyst.expect_download() as download:
            analyst.click(f"a[href='/studies/{STUDY['id']}/files/{link}']")
        files[link] = Path(download.value.path()).read_text(encoding="utf-8")
    assert json.loads(files["result.json"])["study_id"] == STUDY["id"]
    assert files["transitions.csv"].startswith("service,from,to,probability")
    assert "<script" not in files["report.html"] and 'role="img"' in files["report.html"]
    # the register lists it, in sentences
    analyst.goto(site.url + "/register")
    assert STUDY["name"] in analyst.inner_text("main") and "Human oversight" in analyst.inner_text("main")
    _checked(site, analyst, "register-with-study")
    assert [m for found in csp_lists for m in found] == []
    officer_context.close()
    analyst_context.close()


def test_an_analyst_gets_the_403_page_for_the_approval_page(site: Site) -> None:
    context = site.context()
    page = context.new_page()
    _sign_in(site, page, "analyst")
    answer = page.goto(f"{site.url}/studies/{STUDY['id']}/check")
    assert answer is not None and answer.status == 403
    assert page.title().startswith("Error: You cannot see this page")
    _checked(site, page, "forbidden")
    context.close()


def test_a_forged_form_without_its_csrf_token_is_refused(site: Site) -> None:
    # Prepare: the officer's signed-in browser; a form like the budget form, but without the CSRF token
    context = site.context()
    page = context.new_page()
    _sign_in(site, page, "officer")
    page.goto(f"{site.url}/datasets/{DATASET}")
    # Execute: the forged form posted from the coordinator's own page (same origin, the session cookie sent)
    with page.expect_navigation():
        page.evaluate("""() => { const f = document.createElement('form'); f.method = 'post';
            f.action = '/datasets/espoo/health_care/budget';
            for (const [k, v] of [['period', '2024'], ['epsilon', '99']]) {
              const i = document.createElement('input'); i.name = k; i.value = v; f.appendChild(i); }
            document.body.appendChild(f); f.submit(); }""")
    # Assert
    assert page.title().startswith("Error: The form could not be sent")
    _checked(site, page, "csrf-refused")
    # and the same form posted from another site: the Strict cookie stays home, so nobody is signed in
    page.goto("data:text/html,<form method=post action='" + site.url + "/datasets/espoo/health_care/budget'>"
              "<input name=period value=2024><input name=epsilon value=98><button>go</button></form>")
    with page.expect_navigation():
        page.click("button")
    assert page.url.startswith(site.url + "/sign-in")
    page.goto(f"{site.url}/datasets/{DATASET}")
    assert "budget set to ε 99" not in page.inner_text("main") and "ε 98" not in page.inner_text("main")
    context.close()


def test_an_admin_adds_a_principal_revokes_it_and_sets_a_municipality_cap(site: Site) -> None:
    context = site.context()
    page = context.new_page()
    csp = _watch_csp(page)
    _sign_in(site, page, "admin")
    _checked(site, page, "admin-home")
    # a form with mistakes: the error summary, each field marked
    _follow(page, "text=Principals")
    _checked(site, page, "principals")
    page.fill("#name", "X")
    _follow(page, "button:has-text('Add the principal')")
    assert page.title().startswith("Error: Principals") and "Choose a role" in page.inner_text(".error-summary")
    _checked(site, page, "principals-with-errors")
    # the principal added: the token once, and it works
    page.fill("#name", "espoo.welfare.officer")
    page.check("#role-privacy_officer")
    page.fill("#datasets", "espoo/child_welfare")
    _follow(page, "button:has-text('Add the principal')")
    token = page.input_value("#token")
    assert token.startswith("tlt_") and "Not registered yet: espoo/child_welfare." in page.inner_text("main")
    _checked(site, page, "principal-created")
    me = httpx.get(f"{site.url}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    assert me == {"name": "espoo.welfare.officer", "role": "privacy_officer", "datasets": ["espoo/child_welfare"]}
    # revoked after the confirmation page: the token no longer works
    page.goto(site.url + "/principals")
    _follow(page, "a[href='/principals/espoo.welfare.officer/revoke']")
    _checked(site, page, "revoke-confirmation")
    _follow(page, "button:has-text('Revoke espoo.welfare.officer')")
    assert "espoo.welfare.officer is revoked" in page.inner_text(".banner")
    assert httpx.get(f"{site.url}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 401
    # a municipality cap
    _follow(page, "text=Municipality caps")
    _checked(site, page, "caps-empty")
    page.fill("#municipality", "espoo")
    page.fill("#period", "2030")
    page.fill("#epsilon", "6")
    _follow(page, "button:has-text('Save the cap')")
    assert "Cap set: ε 6.00 for espoo, period 2030." in page.inner_text(".banner")
    _checked(site, page, "caps-set")
    assert csp == []
    context.close()

def test_every_page_was_checked_by_axe(site: Site) -> None:
    # the tests above ran axe on each kind of page; this one lists them (and fails if a test above was skipped)
    print("axe: 0 violations on " + "; ".join(site.checked))
    assert len(site.checked) >= 20
