"""Launching approved studies on the SuperLink and collecting what the ServerApp writes.

A launch submits the signed spec with ``flwr run``; the watcher then reads the run's
``progress.json`` and ``result.json`` from the results directory. The watcher works from the
database alone, so a coordinator that crashed mid-run picks the run up again after a restart —
and the charge, made before the spec was signed, is neither lost nor repeated.
"""

from __future__ import annotations

import datetime
import json
import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.errors import Conflict, ServiceUnavailable, TillitError
from coordinator.lifecycle import StudyStatus, move
from coordinator.models import LedgerEntry, Study
from coordinator.principals import Identity
from coordinator.studies import approved_spec, get_study, study_json
from federation.launch import LaunchTarget, list_runs, progress_path, read_json, result_path, submit_run

if TYPE_CHECKING:
    from coordinator.state import Coordinator

__all__ = ["RunCensus", "SuperLinkProbe", "SuperLinkRuns", "Watcher", "launch", "launch_target", "recover_interrupted_launches", "results", "watch_once"]


def launch_target(coordinator: Coordinator) -> LaunchTarget:
    settings = coordinator.settings
    if settings.superlink is None:
        raise ServiceUnavailable("this coordinator has no SuperLink configured (--superlink); studies cannot run")
    ca = None if settings.superlink_insecure else settings.root_certificates
    return LaunchTarget.for_superlink(settings.state_dir / "flwr-home", settings.superlink, ca,
                                      settings.run_results_dir)


def launch(coordinator: Coordinator, session: Session, analyst: Identity, study_id: str) -> dict[str, Any]:
    """Submit an approved study. Three commits: ``launching`` before ``flwr run`` (so a crash mid-submit is
    seen and undone at the next start), then ``running`` with its run id, or back to ``approved``."""
    study = get_study(session, study_id, lock=True)
    if study.status != StudyStatus.APPROVED:
        raise Conflict(f"study {study_id} is {study.status}; only an approved study can be launched")
    target = launch_target(coordinator)
    move(session, coordinator.signer, study, StudyStatus.LAUNCHING, analyst.name, "study.launching", {})
    spec = approved_spec(study)
    session.commit()
    path = coordinator.studies_dir / study_id / "spec.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec.model_dump_json(indent=1), encoding="utf-8")
    try:
        run_id = submit_run(target, path, contracts_dirs=coordinator.settings.contracts_dirs,
                            round_seconds=coordinator.settings.round_seconds)
    except TillitError as error:
        study = get_study(session, study_id, lock=True)
        move(session, coordinator.signer, study, StudyStatus.APPROVED, "coordinator", "study.launch_failed",
             {"detail": error.message})
        session.commit()
        raise ServiceUnavailable(f"study {study_id} could not be launched: {error.message}") from None
    study = get_study(session, study_id, lock=True)
    study.run_id = str(run_id)
    move(session, coordinator.signer, study, StudyStatus.RUNNING, "coordinator", "study.running",
         {"run_id": str(run_id)})
    return study_json(session, study)


def recover_interrupted_launches(coordinator: Coordinator) -> None:
    """A study left ``launching`` by a crash goes back to ``approved`` (its run id was never recorded)."""
    with coordinator.db.transaction() as session:
        for study in session.execute(select(Study).where(Study.status == StudyStatus.LAUNCHING)).scalars():
            move(session, coordinator.signer, study, StudyStatus.APPROVED, "coordinator", "study.launch_interrupted")


class _Every:
    """True at most once every ``seconds`` (monotonic clock): how often the watcher may ask the SuperLink."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: float | None = None

    def due(self) -> bool:
        import time

        now = time.monotonic()
        if self._last is not None and now - self._last < self.seconds:
            return False
        self._last = now
        return True


class SuperLinkProbe:
    """Whether the SuperLink accepts TCP connections on its Control API, and since when it has not.

    A run lives in the SuperLink (the run, its messages and its ServerApp process), so a SuperLink that is gone
    takes its runs with it; without this the watcher would see that only once a run shows no progress for the
    round deadline plus :data:`STALL_GRACE_SECONDS` (6 minutes at the defaults). A connection is opened and
    closed at most every ``every`` seconds; nothing is sent."""

    def __init__(self, address: str, every: float = 2.0, timeout: float = 2.0) -> None:
        host, _, port = address.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.timeout = timeout
        self._every = _Every(every)
        self._down_since: datetime.datetime | None = None

    def reachable(self) -> bool:
        import socket

        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout):
                return True
        except OSError:
            return False

    def down_since(self, now: datetime.datetime) -> datetime.datetime | None:
        """When the SuperLink started refusing connections (None: it accepts them)."""
        if self._every.due():
            if self.reachable():
                self._down_since = None
            elif self._down_since is None:
                self._down_since = now
        return self._down_since


class SuperLinkRuns:
    """The runs a SuperLink listed, with their Flower status, and when the listing was asked for;
    ``finished_since``: for each finished run, the first listing that showed it finished."""

    def __init__(self, asked_at: datetime.datetime, statuses: dict[int, str],
                 finished_since: dict[int, datetime.datetime] | None = None) -> None:
        self.asked_at, self.statuses = asked_at, statuses
        self.finished_since = finished_since if finished_since is not None else {
            run: asked_at for run, status in statuses.items() if status.startswith("finished")}


#: a run Flower reports finished gets this long for its result file to appear (a shared results directory may
#: show it late) before the study ends as ``run_ended``
RESULT_GRACE_SECONDS = 10.0


class RunCensus:
    """The SuperLink's list of runs (``flwr ls`` through the Control API), asked for at most every ``every``
    seconds and only while studies run.

    The TCP probe (:class:`SuperLinkProbe`) cannot tell a SuperLink that was restarted on the same port: it
    accepts connections, but with its state in memory the runs it held are gone, and so are their ServerApps.
    The listing tells: a running study whose run the SuperLink does not list is lost. It also tells a run that
    Flower reports finished (its ServerApp exited) without having written a result."""

    def __init__(self, target: LaunchTarget, every: float = 15.0) -> None:
        self.target = target
        self._every = _Every(every)
        self._latest: SuperLinkRuns | None = None

    def runs(self, now: datetime.datetime) -> SuperLinkRuns | None:
        """The latest listing (None: none yet, or the SuperLink did not answer — the probe covers that)."""
        from common.errors import ProcessFailed

        if self._every.due():
            try:
                statuses = list_runs(self.target)
            except ProcessFailed:
                self._latest = None
            else:
                before = self._latest.finished_since if self._latest is not None else {}
                self._latest = SuperLinkRuns(now, statuses, {
                    run: before.get(run, now) for run, status in statuses.items() if status.startswith("finished")})
        return self._latest


def _running_studies(coordinator: Coordinator) -> bool:
    with coordinator.db.transaction() as session:
        return session.execute(select(Study.id).where(Study.status == StudyStatus.RUNNING).limit(1)).first() is not None


def watch_once(coordinator: Coordinator, at: datetime.datetime | None = None,
               superlink_down_since: datetime.datetime | None = None,
               superlink_runs: SuperLinkRuns | None = None) -> int:
    """Look at every running study once; returns how many finished (released, failed, or past the deadline).
    ``superlink_down_since``: since when the SuperLink has refused connections (:class:`SuperLinkProbe`);
    ``superlink_runs``: the runs it listed (:class:`RunCensus`) — a listing asked for after a study started
    that lacks its run, or reports it finished while no result is there, ends the study."""
    settings = coordinator.settings
    at = at or datetime.datetime.now(datetime.timezone.utc)
    with coordinator.db.transaction() as session:
        running = [(s.id, s.run_id) for s in session.execute(
            select(Study).where(Study.status == StudyStatus.RUNNING)).scalars()]
    finished = 0
    for study_id, run_id in running:
        assert run_id is not None
        progress = read_json(progress_path(settings.run_results_dir, int(run_id)))
        result = read_json(result_path(settings.run_results_dir, int(run_id)))
        with coordinator.db.transaction() as session:
            study = get_study(session, study_id, lock=True)
            if study.status != StudyStatus.RUNNING:
                continue
            launched = datetime.datetime.fromisoformat(study.launched_at or study.created_at)
            seen = _note_progress(study, progress, at) or launched
            if result is None and (at - launched).total_seconds() > settings.run_deadline_seconds:
                result = {"status": "failed", "error": {
                    "code": "deadline", "detail": f"no result {settings.run_deadline_seconds:.0f} s after the launch; "
                                                  "the charges made at approval stay"}}
            elif (result is None and superlink_down_since is not None
                  and (at - max(superlink_down_since, launched)).total_seconds() > settings.superlink_grace_seconds):
                result = {"status": "failed", "error": {
                    "code": "superlink_lost", "detail": f"the SuperLink at {settings.superlink} has refused "
                                                        f"connections for {(at - superlink_down_since).total_seconds():.0f} s "
                                                        "and its runs are gone with it; the charges made at "
                                                        "approval stay"}}
            elif (result is None and superlink_runs is not None and superlink_runs.asked_at > launched
                  and int(run_id) not in superlink_runs.statuses):
                result = {"status": "failed", "error": {
                    "code": "run_lost", "detail": f"the SuperLink at {settings.superlink} no longer lists run "
                                                  f"{run_id} (it was restarted, and its runs are gone); the charges "
                                                  "made at approval stay"}}
            elif (result is None and superlink_runs is not None and superlink_runs.asked_at > launched
                  and int(run_id) in superlink_runs.finished_since
                  and (at - superlink_runs.finished_since[int(run_id)]).total_seconds() > RESULT_GRACE_SECONDS):
                status = superlink_runs.statuses[int(run_id)]
                result = {"status": "failed", "error": {
                    "code": "run_ended", "detail": f"Flower reports run {run_id} {status}, and its ServerApp "
                                                   "wrote no result; the charges made at approval stay"}}
            elif result is None and (at - seen).total_seconds() > settings.round_seconds + STALL_GRACE_SECONDS:
                # every exchange of a live run ends within round_seconds and moves its progress on
                result = {"status": "failed", "error": {
                    "code": "stalled", "detail": f"the run made no progress for {(at - seen).total_seconds():.0f} s "
                                                 "(its ServerApp or SuperLink is gone); the charges made at approval "
                                                 "stay"}}
            if result is not None:
                _finish(coordinator, session, study, result)
                finished += 1
    return finished


#: beyond the round deadline, how long a run may show no progress before the watcher gives it up
STALL_GRACE_SECONDS = 60.0


def _note_progress(study: Study, progress: dict[str, Any] | None, at: datetime.datetime) -> datetime.datetime | None:
    """Store the run's progress; when it last changed, on the coordinator's clock (None: no progress yet)."""
    before = json.loads(study.progress) if study.progress else None
    if progress is None:
        return datetime.datetime.fromisoformat(before["seen_at"]) if before and "seen_at" in before else None
    changed = before is None or {k: v for k, v in before.items() if k != "seen_at"} != progress
    seen = at if changed or before is None or "seen_at" not in before else datetime.datetime.fromisoformat(before["seen_at"])
    study.progress = json.dumps({**progress, "seen_at": seen.isoformat()})
    return seen


def _finish(coordinator: Coordinator, session: Session, study: Study, result: dict[str, Any]) -> None:
    charged = {e.dataset for e in session.execute(select(LedgerEntry).where(LedgerEntry.study_id == study.id))
               .scalars()}
    spec = approved_spec(study)
    if not charged >= set(spec.datasets):   # cannot happen through the lifecycle; never release uncharged
        study.error = json.dumps({"code": "uncharged", "detail": "not every dataset charged"})
        move(session, coordinator.signer, study, StudyStatus.FAILED, "coordinator", "study.failed",
             {"code": "uncharged"})
        return
    if result.get("status") == "completed":
        study.result = json.dumps(result)
        move(session, coordinator.signer, study, StudyStatus.RELEASED, "coordinator", "study.released",
             {"run_id": study.run_id, "result_sha256": _sha(json.dumps(result, sort_keys=True))})
    else:
        error = result.get("error", {"code": result.get("status", "failed"), "detail": ""})
        study.error = json.dumps({**error, "refusals": result.get("refusals", []), "lost": result.get("lost", [])})
        move(session, coordinator.signer, study, StudyStatus.FAILED, "coordinator", "study.failed",
             {"run_id": study.run_id, "code": error.get("code")})


def results(session: Session, study_id: str) -> dict[str, Any]:
    """A released study's result JSON, as the ServerApp wrote it (without where it was written)."""
    study = get_study(session, study_id)
    if study.status != StudyStatus.RELEASED or study.result is None:
        raise Conflict(f"study {study_id} is {study.status}; results exist once it is released")
    document: dict[str, Any] = json.loads(study.result)
    document.pop("result_path", None)
    return document


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


class Watcher:
    """A daemon thread calling :func:`watch_once` every ``watch_seconds`` until stopped."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tillit-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        import logging

        address = self.coordinator.settings.superlink
        probe = SuperLinkProbe(address) if address else None
        census = RunCensus(launch_target(self.coordinator)) if address else None
        while not self._stop.wait(self.coordinator.settings.watch_seconds):
            try:
                at = datetime.datetime.now(datetime.timezone.utc)
                down_since = probe.down_since(at) if probe else None
                runs = (census.runs(at) if census is not None and down_since is None
                        and _running_studies(self.coordinator) else None)
                watch_once(self.coordinator, at, down_since, runs)
            except Exception:  # noqa: BLE001 - keep watching; the error is logged for the operator
                logging.getLogger("tillit.coordinator").exception("watching running studies failed")
