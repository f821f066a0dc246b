"""Revoking a principal's token: admin only, audited, final (every route answers the token 401 from then on), and
never the last active admin."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.coordinator.conftest import World
from tests.coordinator.test_authz import MATRIX
from tillit.cli import main


def _revoke(world: World, name: str, by: str = "admin") -> httpx.Response:
    return world.client.post(f"/v1/principals/{name}/revoke", headers=world.headers(by))


def test_a_revoked_token_gets_401_on_every_route(world: World) -> None:
    # Prepare: the analyst's token works; a pending study for the study routes
    assert world.client.get("/v1/me", headers=world.headers("analyst")).status_code == 200
    assert world.client.post("/v1/studies", json=world.draft("pending-study"),
                             headers=world.headers("analyst")).status_code == 201
    # Execute
    revoked = _revoke(world, "analyst")
    # Assert: every route that takes a token refuses it as unknown, whatever role the route wants
    assert revoked.status_code == 200 and revoked.json()["revoked"] and revoked.json()["revoked_at"]
    for name, (method, path, body, allowed) in sorted(MATRIX.items()):
        if allowed is None:
            continue
        payload = world.draft(f"study-{name.replace('_', '-')}") if body == "draft" else body
        answer = world.client.request(method, path, json=payload, headers=world.headers("analyst"))
        assert answer.status_code == 401 and answer.json()["error"] == "not_authenticated", (name, answer.text)


def test_a_revocation_is_audited_and_the_tables_still_agree_with_the_chain(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare / Execute
    assert _revoke(world, "vantaa-officer").status_code == 200
    # Assert: an audit entry by the admin, the list says revoked, and `audit verify` finds the table as the chain says
    entries = world.client.get("/v1/audit", headers=world.headers("admin")).json()
    last = entries[-1]
    assert (last["action"], last["actor"], last["subject"]) == ("principal.revoked", "admin", "vantaa-officer")
    assert last["payload"]["revoked"] is True and last["payload"]["role"] == "privacy_officer"
    principals = world.client.get("/v1/principals", headers=world.headers("admin")).json()
    listed = {p["name"]: p["revoked"] for p in principals}
    assert listed["vantaa-officer"] and not listed["officer"]
    assert main(["audit", "verify", "--state", str(world.coordinator.settings.state_dir)]) == 0
    assert "agrees with it" in capsys.readouterr().out


def test_the_last_active_admin_cannot_be_revoked(world: World) -> None:
    # Execute / Assert: alone, the admin cannot revoke itself
    alone = _revoke(world, "admin")
    assert alone.status_code == 409 and "last active admin" in alone.json()["detail"]
    # with a second admin, the first can go; then the second is the last one
    second = world.client.post("/v1/principals", json={"name": "admin-2", "role": "admin"},
                               headers=world.headers("admin")).json()
    world.tokens["admin-2"] = second["token"]
    assert _revoke(world, "admin", by="admin-2").status_code == 200
    assert world.client.get("/v1/me", headers=world.headers("admin")).status_code == 401
    last = _revoke(world, "admin-2", by="admin-2")
    assert last.status_code == 409 and "last active admin" in last.json()["detail"]
    assert world.client.get("/v1/me", headers=world.headers("admin-2")).status_code == 200


def test_revoking_an_unknown_or_revoked_principal_is_refused(world: World) -> None:
    assert _revoke(world, "nobody").status_code == 404
    assert _revoke(world, "node").status_code == 200
    again = _revoke(world, "node")
    assert again.status_code == 409 and "revoked already" in again.json()["detail"]


def test_only_an_admin_may_revoke(world: World) -> None:
    answer = _revoke(world, "analyst", by="officer")
    assert answer.status_code == 403
    assert world.client.get("/v1/me", headers=world.headers("analyst")).status_code == 200


def test_tillit_principal_revoke_revokes_from_the_command_line(world: World, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: the CLI's HTTP calls go to the in-process coordinator; token files for admin and analyst
    def in_process(method: str, url: str, timeout: float, **options: object) -> httpx.Response:
        return world.client.request(method, url, **options)

    monkeypatch.setattr("tillit.client.httpx.request", in_process)
    files = {}
    for who in ("admin", "analyst"):
        files[who] = tmp_path / f"{who}.token"
        files[who].write_text(world.tokens[who])
    server = ["--coordinator", "http://testserver"]
    # Execute
    code = main(["principal", "revoke", "analyst", *server, "--token-file", str(files["admin"])])
    out = capsys.readouterr().out
    refused = main(["study", "status", *server, "--token-file", str(files["analyst"])])
    # Assert: revoked (exit 0); the analyst's next command is refused as unauthenticated (exit 5)
    assert code == 0 and "revoked analyst" in out
    assert refused == 5 and "was revoked" in capsys.readouterr().err
    listed = main(["principal", "list", *server, "--token-file", str(files["admin"])])
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert listed == 0 and rows["analyst"][-1] == "True" and rows["officer"][-1] == "False"
