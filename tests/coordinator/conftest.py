"""A coordinator on a temporary state directory with one principal per role, for in-process API tests.

PostgreSQL runs where ``TILLIT_TEST_POSTGRES_URL`` names a server on which the user may create
databases (each test gets its own database, dropped afterwards); otherwise those cases skip.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from coordinator.app import create_app
from coordinator.principals import create_principal
from coordinator.settings import parse_settings
from coordinator.state import Coordinator, open_coordinator

PUBLIC_KEY = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQ="
DRAFT = {"name": "Health-segment transitions", "template": "health_transitions",
         "purpose": "Plan health and care services for the next decade", "legal_basis": "Act on the secondary "
         "use of health and social data (552/2019)", "organisation": "City of Espoo, social and health services",
         "contact": "planning@espoo.example", "period": "2024"}


@dataclass
class World:
    coordinator: Coordinator
    app: FastAPI
    client: TestClient
    tokens: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def browser(self, who: str | None = None) -> TestClient:
        """A client like a browser on this coordinator (https, so the Secure cookie is kept), signed in as ``who``
        through the sign-in form (None: signed out)."""
        client = TestClient(self.app, base_url="https://testserver")
        if who is not None:
            page = client.get("/sign-in")
            nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
            assert nonce is not None, page.text
            answer = client.post("/sign-in", data={"nonce": nonce.group(1), "token": self.tokens[who], "next": "/"},
                                 headers={"origin": "https://testserver"}, follow_redirects=False)
            assert answer.status_code == 303, answer.text
        return client

    @staticmethod
    def csrf(client: TestClient) -> str:
        """The CSRF token of the browser's session, as its pages' forms carry it."""
        found = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text)
        assert found is not None
        return found.group(1)

    def draft(self, study_id: str, municipalities: tuple[str, ...] = ("espoo",), epsilon: float = 1.0,
              **extra: object) -> dict[str, object]:
        return {**DRAFT, "id": study_id, "params": {"municipalities": list(municipalities), "epsilon": epsilon},
                **extra}


def _postgres_url() -> Iterator[str]:
    base = os.environ.get("TILLIT_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("no PostgreSQL server: set TILLIT_TEST_POSTGRES_URL to run the PostgreSQL cases")
    from sqlalchemy import create_engine, text

    name = f"tillit_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
    else:
        yield from _postgres_url()


def make_world(state_dir: Path, url: str | None = None, signing_key: Path | None = None) -> Iterator[World]:
    """Principals: admin, an Espoo health officer, a Vantaa officer, an analyst, the Espoo and Vantaa
    health nodes (both enrolled). ``signing_key``: kept outside the state directory."""
    coordinator = open_coordinator(parse_settings(state_dir=state_dir, database_url=url, signing_key=signing_key))
    tokens = {"admin": (state_dir / "admin.token").read_text().strip()}
    with coordinator.db.transaction() as session:
        for name, role, datasets in (("officer", "privacy_officer", ("espoo/health_care",)),
                                     ("vantaa-officer", "privacy_officer", ("vantaa/health_care",)),
                                     ("analyst", "analyst", ()),
                                     ("node", "node", ("espoo/health_care",)),
                                     ("vantaa-node", "node", ("vantaa/health_care",))):
            tokens[name] = create_principal(coordinator.signer, session, "admin", name, role, datasets)
    app = create_app(coordinator, watch=False)
    client = TestClient(app)
    world = World(coordinator, app, client, tokens)
    with client:
        for node, dataset in (("node", "espoo/health_care"), ("vantaa-node", "vantaa/health_care")):
            answer = client.put(f"/v1/nodes/{dataset}", json={"contract": "health_care", "public_key": PUBLIC_KEY},
                                headers=world.headers(node))
            assert answer.status_code == 200, answer.text
        yield world
    coordinator.db.dispose()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path / "coordinator")
