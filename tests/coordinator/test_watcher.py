"""The run watcher: a study that never gets a result ends at its deadline, failed with the reason, charges kept."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from coordinator.lifecycle import StudyStatus, move
from coordinator.models import LedgerEntry, Study
from coordinator.runner import RESULT_GRACE_SECONDS, SuperLinkRuns, watch_once
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


def _launched(world: World, study_id: str) -> dt.datetime:
    with world.coordinator.db.transaction() as session:
        study = session.get(Study, study_id)
        assert study is not None and study.launched_at is not None
        return dt.datetime.fromisoformat(study.launched_at)


def test_a_run_the_superlink_no_longer_lists_fails_as_lost_and_keeps_its_charge(world: World) -> None:
    # Prepare: a running study (run 424242); listings of the SuperLink's runs asked for before and after it started
    _running(world, "restarted")
    launched = _launched(world, "restarted")
    listed = SuperLinkRuns(launched + dt.timedelta(seconds=2), {424242: "running", 7: "finished:completed"})
    stale = SuperLinkRuns(launched - dt.timedelta(seconds=1), {7: "finished:completed"})
    restarted = SuperLinkRuns(launched + dt.timedelta(seconds=20), {})
    # Execute: a listing that holds the run, and one asked for before the study started, change nothing; a
    # later one without it (a SuperLink restarted with its state in memory) ends the study
    at = launched + dt.timedelta(seconds=21)
    unchanged = watch_once(world.coordinator, at=at, superlink_runs=listed) + watch_once(
        world.coordinator, at=at, superlink_runs=stale)
    ended = watch_once(world.coordinator, at=at, superlink_runs=restarted)
    # Assert: failed as run_lost at once — not 6 minutes later by the stall rule — with its charge kept
    assert (unchanged, ended) == (0, 1)
    answer = world.client.get("/v1/studies/restarted", headers=world.headers("analyst")).json()
    assert answer["status"] == "failed" and answer["error"]["code"] == "run_lost"
    assert "no longer lists run 424242" in answer["error"]["detail"]
    with world.coordinator.db.transaction() as session:
        charged = session.execute(select(LedgerEntry).where(LedgerEntry.study_id == "restarted")).scalars().all()
    assert [e.dataset for e in charged] == ["espoo/health_care"]


def test_a_run_flower_reports_finished_without_a_result_fails_after_a_grace_for_the_file(world: World) -> None:
    # Prepare: a running study whose run Flower lists as finished:failed (its ServerApp exited) and no result file
    _running(world, "serverapp-died")
    launched = _launched(world, "serverapp-died")
    finished = SuperLinkRuns(launched + dt.timedelta(seconds=5), {424242: "finished:failed"})
    # Execute: a look within the grace for the result file changes nothing; one after it ends the study
    within = watch_once(world.coordinator, at=finished.asked_at + dt.timedelta(seconds=RESULT_GRACE_SECONDS / 2),
                        superlink_runs=finished)
    after = watch_once(world.coordinator, at=finished.asked_at + dt.timedelta(seconds=RESULT_GRACE_SECONDS + 1),
                       superlink_runs=finished)
    # Assert
    assert (within, after) == (0, 1)
    answer = world.client.get("/v1/studies/serverapp-died", headers=world.headers("analyst")).json()
    assert answer["status"] == "failed" and answer["error"]["code"] == "run_ended"
    assert "finished:failed" in answer["error"]["detail"]


def test_a_finished_run_with_its_result_is_released_from_the_result_not_ended(world: World) -> None:
    # Prepare: Flower lists the run finished, and the ServerApp's result is there
    from federation.launch import result_path

    _running(world, "done")
    launched = _launched(world, "done")
    path = result_path(world.coordinator.settings.run_results_dir, 424242)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"status": "failed", "error": {"code": "refused", "detail": "a node refused"}}))
    finished = SuperLinkRuns(launched + dt.timedelta(seconds=5), {424242: "finished:completed"})
    # Execute
    ended = watch_once(world.coordinator, at=launched + dt.timedelta(seconds=60), superlink_runs=finished)
    # Assert: the result file decides, as without a listing
    assert ended == 1
    answer = world.client.get("/v1/studies/done", headers=world.headers("analyst")).json()
    assert answer["error"]["code"] == "refused"


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
