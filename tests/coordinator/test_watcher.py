"""The run watcher: a study that never gets a result ends at its deadline, failed with the reason, charges kept."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from coordinator.lifecycle import StudyStatus, move
from coordinator.models import LedgerEntry, Study
from coordinator.runner import watch_once
from tests.coordinator.conftest import World


def _running(world: World, study_id: str) -> None:
    """A study drafted, approved (so charged) and launched as a run that will never write a result."""
    world.client.put("/v1/budgets/espoo/health_care/2024", json={"epsilon": 5.0}, headers=world.headers("officer"))
    assert world.client.post("/v1/studies", json=world.draft(study_id), headers=world.headers("analyst")).status_code == 201
    assert world.client.post(f"/v1/studies/{study_id}/approve", json={"reason": "fits the plan"},
                             headers=world.headers("officer")).status_code == 200
    with world.coordinator.db.transaction() as session:
        study = session.get(Study, study_id)
        assert study is not None
        move(session, world.coordinator.signer, study, StudyStatus.LAUNCHING, "analyst", "study.launching")
        study.run_id = "424242"
        move(session, world.coordinator.signer, study, StudyStatus.RUNNING, "coordinator", "study.running")


def _progress(world: World, done: int) -> None:
    from federation.launch import progress_path

    path = progress_path(world.coordinator.settings.run_results_dir, 424242)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"phase": "compute", "done": done, "total": 10**6, "at": 0}))


def test_a_run_without_a_result_fails_at_the_deadline_and_keeps_its_charge(world: World) -> None:
    # Prepare: a run that keeps making progress but never ends
    _running(world, "never-ends")
    deadline = world.coordinator.settings.run_deadline_seconds
    now = dt.datetime.now(dt.timezone.utc)
    # Execute: looks before the deadline change nothing (the run moves on); one after it ends the study
    before = 0
    for minute in range(0, int(deadline / 60) - 1, 5):
        _progress(world, minute)
        before += watch_once(world.coordinator, at=now + dt.timedelta(minutes=minute))
    _progress(world, 10**5)
    after = watch_once(world.coordinator, at=now + dt.timedelta(seconds=deadline + 60))
    # Assert
    assert (before, after) == (0, 1)
    with world.coordinator.db.transaction() as session:
        study = session.get(Study, "never-ends")
        assert study is not None and study.status == StudyStatus.FAILED
        assert json.loads(study.error or "{}")["code"] == "deadline"
        charged = session.execute(select(LedgerEntry).where(LedgerEntry.study_id == "never-ends")).scalars().all()
    assert [e.dataset for e in charged] == ["espoo/health_care"]
    answer = world.client.get("/v1/studies/never-ends", headers=world.headers("analyst")).json()
    assert answer["status"] == "failed" and "after the launch" in answer["error"]["detail"]


def test_a_run_that_stops_making_progress_is_given_up_after_the_round_deadline(world: World) -> None:
    # Prepare: the run wrote progress once, then its ServerApp died (no more progress, no result)
    _running(world, "stalls")
    settings = world.coordinator.settings
    _progress(world, 3)
    now = dt.datetime.now(dt.timezone.utc)
    # Execute: progress seen now; nothing changes for less, then for more, than the round deadline and a grace
    first = watch_once(world.coordinator, at=now)
    quiet = watch_once(world.coordinator, at=now + dt.timedelta(seconds=settings.round_seconds))
    gone = watch_once(world.coordinator, at=now + dt.timedelta(seconds=settings.round_seconds + 61))
    # Assert
    assert (first, quiet, gone) == (0, 0, 1)
    answer = world.client.get("/v1/studies/stalls", headers=world.headers("analyst")).json()
    assert answer["status"] == "failed" and answer["error"]["code"] == "stalled"
    assert answer["progress"]["done"] == 3


def test_a_run_whose_superlink_refuses_connections_fails_after_the_grace_and_keeps_its_charge(world: World) -> None:
    # Prepare: a run that made progress; its SuperLink stops accepting connections a moment later
    _running(world, "superlink-gone")
    grace = world.coordinator.settings.superlink_grace_seconds
    _progress(world, 2)
    now = dt.datetime.now(dt.timezone.utc)
    down = now + dt.timedelta(seconds=1)
    # Execute: looks within the grace change nothing; one after it ends the study
    within = watch_once(world.coordinator, at=now + dt.timedelta(seconds=grace), superlink_down_since=down)
    after = watch_once(world.coordinator, at=down + dt.timedelta(seconds=grace + 1), superlink_down_since=down)
    # Assert: failed as superlink_lost long before the stall rule (round deadline + 60 s) would have seen it
    assert (within, after) == (0, 1)
    assert grace + 2 < world.coordinator.settings.round_seconds + 60
    answer = world.client.get("/v1/studies/superlink-gone", headers=world.headers("analyst")).json()
    assert answer["status"] == "failed" and answer["error"]["code"] == "superlink_lost"
    with world.coordinator.db.transaction() as session:
        charged = session.execute(select(LedgerEntry).where(LedgerEntry.study_id == "superlink-gone")).scalars().all()
    assert [e.dataset for e in charged] == ["espoo/health_care"]


def test_the_probe_says_since_when_the_superlink_refuses_connections() -> None:
    # Prepare: a listening socket standing in for the SuperLink's Control API
    import socket

    from coordinator.runner import SuperLinkProbe

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    probe = SuperLinkProbe(f"127.0.0.1:{port}", every=0.0, timeout=1.0)
    t0 = dt.datetime.now(dt.timezone.utc)
    # Execute: up; then closed (twice: the first refusal is remembered); then listening again
    up = probe.down_since(t0)
    server.close()
    first = probe.down_since(t0 + dt.timedelta(seconds=1))
    second = probe.down_since(t0 + dt.timedelta(seconds=5))
    server = socket.create_server(("127.0.0.1", port))
    back = probe.down_since(t0 + dt.timedelta(seconds=9))
    server.close()
    # Assert
    assert up is None
    assert first == second == t0 + dt.timedelta(seconds=1)
    assert back is None
