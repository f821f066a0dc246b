"""Budgets and charges: overspend refused with a clear message, concurrent approvals never overspend,
charges are idempotent and the ledger is append-only in the database itself."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from coordinator.ledger import charge
from federation.privacy import RHO_UNITS_PER_RHO, PrivacyLoss
from tests.coordinator.conftest import World, make_world


@pytest.fixture
def any_world(tmp_path: Path, database_url: str | None) -> Iterator[World]:
    yield from make_world(tmp_path / "coordinator", database_url)


def _study_cost(world: World) -> int:
    preview = world.client.post("/v1/studies/preview", json=world.draft("probe"), headers=world.headers("analyst"))
    assert preview.status_code == 200, preview.text
    return int(preview.json()["per_dataset"]["espoo/health_care"]["rho_units"])


def _budget_for(world: World, studies: float) -> None:
    rho = _study_cost(world) * studies / RHO_UNITS_PER_RHO
    answer = world.client.put("/v1/budgets/espoo/health_care/2024", json={"rho": rho},
                              headers=world.headers("officer"))
    assert answer.status_code == 200, answer.text


def test_overspend_is_refused_with_amounts_and_changes_nothing(world: World) -> None:
    # Prepare: a budget for one and a half studies; two pending studies
    _budget_for(world, 1.5)
    for study in ("first-study", "second-study"):
        assert world.client.post("/v1/studies", json=world.draft(study), headers=world.headers("analyst")).status_code == 201
    approve = {"reason": "fits the service plan"}
    assert world.client.post("/v1/studies/first-study/approve", json=approve,
                             headers=world.headers("officer")).json()["status"] == "approved"
    # Execute
    refused = world.client.post("/v1/studies/second-study/approve", json=approve, headers=world.headers("officer"))
    # Assert: 409 naming dataset, period and both amounts; the study stays pending with no approval recorded
    assert refused.status_code == 409
    body = refused.json()
    assert body["error"] == "budget_exceeded"
    assert "espoo/health_care period 2024 has ρ=" in body["detail"] and "this study needs ρ=" in body["detail"]
    second = world.client.get("/v1/studies/second-study", headers=world.headers("officer")).json()
    assert second["status"] == "pending" and second["approvals"] == []
    ledger = world.client.get("/v1/ledger", headers=world.headers("officer")).json()
    assert [e["study_id"] for e in ledger["entries"]] == ["first-study"]


def test_twenty_concurrent_approvals_against_a_budget_for_five_approve_exactly_five(any_world: World) -> None:
    # Prepare: 20 pending studies on the same dataset; a budget for 5.5 of them
    world = any_world
    _budget_for(world, 5.5)
    ids = [f"race-{i:02d}" for i in range(20)]
    for study in ids:
        assert world.client.post("/v1/studies", json=world.draft(study), headers=world.headers("analyst")).status_code == 201

    def approve(study: str) -> int:
        return world.client.post(f"/v1/studies/{study}/approve", json={"reason": "race"},
                                 headers=world.headers("officer")).status_code

    # Execute: all at once, from 20 threads
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = Counter(pool.map(approve, ids))
    # Assert: exactly five approved, fifteen refused for budget, and the ledger never exceeds the cap
    assert statuses == Counter({200: 5, 409: 15})
    ledger = world.client.get("/v1/ledger", headers=world.headers("officer")).json()
    assert len(ledger["entries"]) == 5
    balance = ledger["balances"][0]
    assert balance["spent"]["rho_units"] == 5 * _study_cost(world) <= balance["cap"]["rho_units"]


def test_a_charge_is_idempotent(world: World) -> None:
    # Prepare
    _budget_for(world, 3)
    cost = {"espoo/health_care": PrivacyLoss(_study_cost(world))}
    with world.coordinator.db.transaction() as session:
        # Execute
        first = charge(world.coordinator, session, "officer", "study-x", "2024", cost)
        second = charge(world.coordinator, session, "officer", "study-x", "2024", cost)
    # Assert
    assert (first, second) == (True, False)
    assert len(world.client.get("/v1/ledger", headers=world.headers("officer")).json()["entries"]) == 1


def test_a_municipality_cap_bounds_the_sum_over_its_silos(world: World) -> None:
    # Prepare: a dataset budget for three studies, a municipality cap for one and a half
    _budget_for(world, 3)
    cap_rho = _study_cost(world) * 1.5 / RHO_UNITS_PER_RHO
    assert world.client.put("/v1/caps/espoo/2024", json={"rho": cap_rho}, headers=world.headers("admin")).status_code == 200
    for study in ("one", "two"):
        world.client.post("/v1/studies", json=world.draft(f"cap-{study}"), headers=world.headers("analyst"))
    # Execute
    first = world.client.post("/v1/studies/cap-one/approve", json={"reason": "fits the plan"}, headers=world.headers("officer"))
    second = world.client.post("/v1/studies/cap-two/approve", json={"reason": "fits the plan"}, headers=world.headers("officer"))
    # Assert
    assert first.status_code == 200
    assert second.status_code == 409 and "municipality espoo" in second.json()["detail"]


def test_a_study_needs_a_budget_for_its_period(world: World) -> None:
    world.client.post("/v1/studies", json=world.draft("no-budget"), headers=world.headers("analyst"))
    answer = world.client.post("/v1/studies/no-budget/approve", json={"reason": "fits the plan"}, headers=world.headers("officer"))
    assert answer.status_code == 409 and "has no budget for period 2024" in answer.json()["detail"]


def test_the_database_refuses_to_rewrite_the_ledger(any_world: World) -> None:
    # Prepare: one charge
    world = any_world
    _budget_for(world, 2)
    world.client.post("/v1/studies", json=world.draft("kept"), headers=world.headers("analyst"))
    world.client.post("/v1/studies/kept/approve", json={"reason": "fits the plan"}, headers=world.headers("officer"))
    # Execute / Assert: UPDATE and DELETE fail in the database, not only in our code
    for statement in ("UPDATE ledger SET units = 0", "DELETE FROM ledger", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            with world.coordinator.db.transaction() as session:
                session.execute(text(statement))
    assert len(world.client.get("/v1/ledger", headers=world.headers("officer")).json()["entries"]) == 1
