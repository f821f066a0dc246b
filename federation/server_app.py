"""The ServerApp: runs one study over the connected nodes and writes its result JSON.

Two phases. *Prepare*: every node checks the spec, its extract and its own budget without charging
anything; one refusal ends the study before any node has spent budget. *Compute*: nodes charge
their ledgers, then release noisy counts or noisy model updates; the server only sums, averages
and post-processes what is already private.

Its run config is a :class:`~federation.run_config.RunConfig`. Whatever happens, the ServerApp writes a
result: a spec it cannot plan, a refusal or a lost node ends the study with a result that says why.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from flwr.app import Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

from common.errors import RefusalCode, TillitError
from federation.flower_tuning import poll_interval, shorten_object_pull_backoff
from federation.privacy import StudyPlan, plan_study
from federation.protocol import (
    OP_EVALUATE, OP_NEWTON, OP_PREPARE, OP_TABLE, OP_TRAIN, message_bytes, pack_request, read_all, read_array,
    read_blobs, read_value,
)
from federation.results import (
    evaluation_outputs, model_outputs, newton_intervals, private_evaluation, table_outputs, write_result,
)
from federation.run_config import RunConfig
from federation.spec import StudySpec, load_spec
from federation.vertical.protocol import VALUE_PREFIX, Step, StepReply
from schemas import ContractCatalog

__all__ = ["app"]

app = ServerApp()


class StudyFailed(Exception):
    """The study stops; ``detail`` goes into the result JSON (names and codes, never data)."""

    def __init__(self, status: str, detail: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.detail = detail


@app.main()
def main(grid: Grid, context: Context) -> None:
    # in this process only (the SuperLink's flwr-serverapp), never by importing the module
    config = RunConfig.from_flower(context.run_config)
    shorten_object_pull_backoff(max_time=config.round_seconds)
    started = time.perf_counter()
    try:
        spec = load_spec(config.spec)
        catalog = ContractCatalog(list(config.contracts_dirs))
        plan = plan_study(spec, catalog)
    except TillitError as error:   # a spec this ServerApp cannot plan: a result that says why, not a hang
        write_result(config.results_dir, context.run_id, {
            "run_id": context.run_id, "status": "failed", "seconds": round(time.perf_counter() - started, 3),
            "error": {"code": "unplannable", "detail": error.message}})
        return

    def progress(phase: str, done: int, total: int) -> None:
        write_result(config.results_dir, context.run_id, {"phase": phase, "done": done, "total": total,
                                                          "at": time.time()}, "progress.json")

    link = _Link(grid, config.poll_seconds, progress)
    link.deadline = config.round_seconds
    base: dict[str, Any] = {"study_id": spec.study_id, "run_id": context.run_id, "task": spec.task,
                            "template": spec.task, "datasets": list(spec.datasets),
                            "contract": catalog.get(spec.contract).label if spec.contract else None,
                            "contracts": {d: catalog.get(spec.contract_of(d)).label for d in spec.datasets},
                            "privacy": plan.privacy_json()}
    try:
        nodes = _prepare(link, spec, config.wait_seconds)
        if spec.task == "cross_sector_counts":
            outputs, rounds = _run_cross_sector(link, spec, plan, nodes, catalog)
        elif spec.task == "dp_table":
            outputs, rounds = _run_table(link, spec, plan, nodes)
        else:
            outputs, rounds = _run_model(link, spec, plan, nodes)
        result = {**base, "status": "completed", "outputs": outputs, "dropped": link.dropped,
                  "rounds": rounds, "seconds": round(time.perf_counter() - started, 3)}
    except StudyFailed as failure:
        result = {**base, "status": failure.status, **failure.detail,
                  "seconds": round(time.perf_counter() - started, 3)}
    except Exception as error:  # noqa: BLE001 - every run ends with a result; the traceback stays beside it
        import traceback

        (config.results_dir / str(context.run_id)).mkdir(parents=True, exist_ok=True)
        (config.results_dir / str(context.run_id) / "server_error.log").write_text(traceback.format_exc())
        result = {**base, "status": "failed", "seconds": round(time.perf_counter() - started, 3),
                  "error": {"code": "server_error", "detail": f"the ServerApp failed ({type(error).__name__}); "
                                                               "see server_error.log beside the result"}}
    write_result(config.results_dir, context.run_id, result)


#: Flower's error replies for a node that is gone (the SuperLink answers for it) and for a crashed ClientApp
_LOST = frozenset({3, 4, 5, 8})

#: replies to a training round are not looked for before this share of the previous round's time
_QUIET_SHARE = 0.6


class _Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class _WallClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _Link:
    """Push messages and poll for their replies every ``poll`` seconds (Grid's own helper sleeps 3 s).

    Every poll is a request the SuperLink must answer while the nodes compute on the same cores;
    when the caller knows roughly how long replies take (``expect``: the previous training round),
    the first poll waits for 60 % of that, and polls never come closer than 5 % of the time waited
    (a reply is seen at most 5 % later than it could be)."""

    def __init__(self, grid: Grid, poll: float, progress: Callable[[str, int, int], None],
                 clock: _Clock | None = None) -> None:
        self.grid = grid
        self.poll = poll
        self.progress = progress
        self.clock: _Clock = clock or _WallClock()
        #: cross-sector studies: each node's signed key announcement, from its prepare reply
        self.announcements: dict[str, bytes] = {}
        #: how long any exchange may wait for a node's reply
        self.deadline = 300.0
        #: datasets dropped under the study's quorum: which, in which phase, why
        self.dropped: list[dict[str, Any]] = []

    def collect(self, messages: list[Message], timeout: float | None = None,
                expect: float = 0.0) -> tuple[dict[str, Message], list[str], dict[str, float]]:
        """Push ``messages``; their replies by the id of the message each answers (Flower's own error replies
        for a lost node come from the SuperLink, not the node), and the pushed messages' ids in order."""
        sent = sum(_bytes(m) for m in messages)
        started = self.clock.now()
        pushed = list(self.grid.push_messages(messages))
        ids = set(pushed)
        quiet = _QUIET_SHARE * expect - (self.clock.now() - started)
        if quiet > 0:
            self.clock.sleep(quiet)
        replies: dict[str, Message] = {}
        deadline = started + (self.deadline if timeout is None else timeout)
        while ids and self.clock.now() < deadline:
            for reply in self.grid.pull_messages(ids):
                replies[reply.metadata.reply_to_message_id] = reply
            ids -= set(replies)
            if ids:   # a long wait (a first validation) polls less often
                self.clock.sleep(min(poll_interval(self.clock.now() - started, self.poll),
                                     max(deadline - self.clock.now(), 0.0)))
        received = sum(_bytes(m) for m in replies.values())
        return replies, pushed, {
            "seconds": round(self.clock.now() - started, 4), "bytes_sent": sent, "bytes_received": received}

    def ask(self, requests: dict[str, tuple[int, RecordDict]], phase: str, expect: float = 0.0,
            quorum: int | None = None) -> tuple[dict[str, Message], dict[str, float]]:
        """Send each dataset's node its request; each dataset's reply. A node that refuses fails the study; one
        that is lost (no reply within the deadline, or Flower reports it unavailable) is dropped while at least
        ``quorum`` datasets remain, else the study fails — naming the datasets either way."""
        datasets = list(requests)
        messages = [_message(content, node) for node, content in requests.values()]
        replies, ids, stats = self.collect(messages, expect=expect)
        answered: dict[str, Message] = {}
        lost: dict[str, str] = {}
        refused: list[dict[str, Any]] = []
        for dataset, message_id in zip(datasets, ids):
            reply = replies.get(message_id)
            if reply is None:
                lost[dataset] = f"no reply within {self.deadline:.0f} s"
            elif reply.has_error() and reply.error.code in _LOST:
                lost[dataset] = f"unavailable ({(reply.error.reason or '')[:120]})"
            elif reply.has_error():
                refused.append({"dataset": dataset, "code": reply.error.code,
                                "meaning": RefusalCode.describe(reply.error.code), "detail": reply.error.reason})
            else:
                answered[dataset] = reply
        if refused:
            raise StudyFailed("failed", {"refusals": refused, "error": {
                "code": "node_error", "detail": "; ".join(str(r["detail"]) for r in refused)}})
        for dataset, why in lost.items():
            self.dropped.append({"dataset": dataset, "phase": phase, "reason": why})
        if lost and (quorum is None or len(answered) < quorum):
            raise StudyFailed("failed", {"lost": self.dropped, "error": {
                "code": "node_lost", "detail": f"{phase}: " + "; ".join(f"{d}: {why}" for d, why in lost.items())
                + ("" if quorum is None else f" (quorum {quorum} not met)")}})
        return answered, stats


def _message(content: RecordDict, node_id: int) -> Message:
    return Message(content=content, message_type="query", dst_node_id=node_id)


def _bytes(message: Message) -> int:
    return 0 if message.has_error() else message_bytes(message.content)


def _run_cross_sector(link: _Link, spec: StudySpec, plan: StudyPlan, nodes: dict[str, int],
                      catalog: ContractCatalog) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from federation.vertical.results import STABILITY_EPSILONS, choose_pairs, cross_sector_outputs, noise_scale_at
    from federation.vertical.run import run_cross_sector

    cross, cross_plan = spec.cross_sector, plan.cross_sector
    assert cross is not None and cross_plan is not None
    relay = _FlowerRelay(link, spec, nodes)
    released = run_cross_sector(cross, cross_plan, link.announcements, relay,
                                lambda found: choose_pairs(cross, cross_plan, found), link.progress)
    noise_at: dict[float, float] = {}
    for epsilon in STABILITY_EPSILONS:   # other ε this study could not be planned at are left out of the table
        try:
            noise_at[epsilon] = noise_scale_at(spec, cross_plan, catalog, epsilon)
        except (TillitError, ValueError):
            continue
    return cross_sector_outputs(cross, cross_plan, released, noise_at), relay.rounds


class _FlowerRelay:
    """Steps of a cross-sector study as Flower messages; replies become :class:`StepReply` by dataset."""

    def __init__(self, link: _Link, spec: StudySpec, nodes: dict[str, int]) -> None:
        self.link, self.spec_json, self.nodes = link, spec.model_dump_json(), nodes
        self.rounds: list[dict[str, Any]] = []

    def exchange(self, steps: dict[str, Step]) -> dict[str, StepReply]:
        requests = {dataset: (self.nodes[dataset], pack_request(
            step.op, self.spec_json, blobs=step.blobs, values={VALUE_PREFIX + k: v for k, v in step.values.items()}))
            for dataset, step in steps.items()}
        op = next(iter(steps.values())).op
        by_dataset, stats = self.link.ask(requests, op)   # every role is needed: a lost node fails the study
        self.rounds.append({"step": op, **stats})
        out = {}
        for dataset, reply in by_dataset.items():
            values, arrays, blobs = read_all(reply.content)
            values.pop("dataset", None)
            out[dataset] = StepReply(values={k: v for k, v in values.items() if not isinstance(v, bool)},
                                     arrays=arrays, envelopes=blobs)
        return out


def _prepare(link: _Link, spec: StudySpec, wait: float) -> dict[str, int]:
    """Ask every connected node whether it takes part and can afford the study; map dataset -> node."""
    deadline = time.monotonic() + wait
    node_ids = list(link.grid.get_node_ids())
    while len(node_ids) < len(spec.datasets) and time.monotonic() < deadline:
        time.sleep(0.2)
        node_ids = list(link.grid.get_node_ids())
    spec_json = spec.model_dump_json()
    messages = [_message(pack_request(OP_PREPARE, spec_json), n) for n in node_ids]
    link.progress("prepare", 0, len(spec.datasets))
    replies, _, _ = link.collect(messages)   # a node that does not answer here is a node the study lacks
    mapping: dict[str, int] = {}
    refusals = []
    for reply in replies.values():
        if reply.has_error() and reply.error.code in _LOST:
            continue
        if reply.has_error():
            error = reply.error
            if error.code == RefusalCode.NOT_PARTICIPATING:      # not part of this study: not a refusal
                continue
            refusals.append({"code": error.code, "meaning": RefusalCode.describe(error.code),
                             "detail": error.reason})
        else:
            dataset = str(read_value(reply.content, "dataset"))
            mapping[dataset] = reply.metadata.src_node_id
            announcement = read_blobs(reply.content).get("announcement")
            if announcement is not None:
                link.announcements[dataset] = announcement
    if refusals:
        raise StudyFailed("refused", {"refusals": refusals,
                                      "error": {"code": "refused", "detail": "; ".join(str(r["detail"]) for r in refusals)}})
    missing = sorted(set(spec.datasets) - set(mapping))
    if missing:
        raise StudyFailed("failed", {"error": {"code": "nodes_missing",
                                               "detail": f"no connected node holds {', '.join(missing)}, or it "
                                                         f"did not answer within {link.deadline:.0f} s"}})
    return mapping


def _run_table(link: _Link, spec: StudySpec, plan: StudyPlan,
               nodes: dict[str, int]) -> tuple[dict[str, Any], list[dict[str, float]]]:
    spec_json = spec.model_dump_json()
    link.progress("compute", 0, 1)
    answered, stats = link.ask({d: (n, pack_request(OP_TABLE, spec_json)) for d, n in nodes.items()}, "compute",
                               quorum=spec.quorum)
    counts = {ds: read_array(m.content, "counts") for ds, m in answered.items()}
    assert plan.table is not None
    return table_outputs(spec, plan, counts), [stats]


def _run_newton(link: _Link, spec: StudySpec, plan: StudyPlan,
                nodes: dict[str, int]) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """The noisy Newton method (:mod:`federation.tasks.newton`): every round each node's noisy gradient sum and
    curvature trace, in the plan's curvature rounds also its noisy curvature; the server steps and averages the
    last iterates."""
    from federation.tasks import NewtonSolver, feature_columns

    model = plan.model
    assert spec.model is not None and model is not None
    shape = (len(model.classes) - 1, len(model.features))
    solver = NewtonSolver(shape, model.noise_scale, model.hessian_noise_scale, feature_columns(model.features))
    params = np.zeros(shape)
    rounds: list[dict[str, Any]] = []
    spec_json = spec.model_dump_json()
    for round_ in range(1, model.rounds + 1):
        link.progress("compute", round_ - 1, model.rounds)
        requests = {d: (n, pack_request(OP_NEWTON, spec_json, round_, params)) for d, n in nodes.items()}
        by_dataset, stats = link.ask(requests, f"round {round_}", expect=rounds[-1]["seconds"] if round_ >= 3 else 0.0,
                                     quorum=spec.quorum)
        nodes = {d: n for d, n in nodes.items() if d in by_dataset}   # a dropped node is not asked again
        if round_ in model.hessian_rounds:
            solver.update_curvature(np.sum([read_array(m.content, "hessian") for m in by_dataset.values()], axis=0),
                                    len(by_dataset))
        gradient = np.sum([read_array(m.content, "gradient") for m in by_dataset.values()], axis=0)
        trace = float(np.sum([read_array(m.content, "trace") for m in by_dataset.values()]))
        params = solver.step(params, gradient, len(by_dataset), trace)
        rounds.append({"round": round_, **stats})
    estimate = solver.estimate()
    outputs = model_outputs(spec, plan, estimate, {})
    outputs.update(newton_intervals(plan, estimate, solver))
    if model.evaluation is not None:
        link.progress("evaluate", model.rounds, model.rounds)
        requests = {d: (n, pack_request(OP_EVALUATE, spec_json, model.rounds + 1, estimate)) for d, n in nodes.items()}
        by_dataset, stats = link.ask(requests, "evaluation", quorum=spec.quorum)
        histogram = np.sum([read_array(m.content, "histogram") for m in by_dataset.values()], axis=0)
        outputs.update(private_evaluation(plan, histogram, len(by_dataset), solver.covariance()[1]))
        rounds.append({"round": model.rounds + 1, "evaluation": True, **stats})
    return outputs, rounds


def _run_model(link: _Link, spec: StudySpec, plan: StudyPlan,
               nodes: dict[str, int]) -> tuple[dict[str, Any], list[dict[str, float]]]:
    assert spec.model is not None and plan.model is not None
    if plan.model.optimizer == "newton":
        return _run_newton(link, spec, plan, nodes)
    params = np.zeros((len(plan.model.classes) - 1, len(plan.model.features)))
    weights: dict[str, float] = {}
    rounds: list[dict[str, Any]] = []
    spec_json = spec.model_dump_json()
    for round_ in range(1, spec.model.round_count + 1):
        link.progress("compute", round_ - 1, spec.model.round_count)
        requests = {d: (n, pack_request(OP_TRAIN, spec_json, round_, params)) for d, n in nodes.items()}
        # round 1 also encodes each node's data; from round 3 on, the round before is a fair guide
        by_dataset, stats = link.ask(requests, f"round {round_}", expect=rounds[-1]["seconds"] if round_ >= 3 else 0.0,
                                     quorum=spec.quorum)
        nodes = {d: n for d, n in nodes.items() if d in by_dataset}   # a dropped node is not asked again
        if round_ == 1:
            # weights are the nodes' noisy resident counts, released once with round 1
            weights = {ds: max(float(read_value(m.content, "noisy_count")), 1.0) for ds, m in by_dataset.items()}
        weights = {ds: w for ds, w in weights.items() if ds in by_dataset}
        total = sum(weights.values())
        params = np.sum([weights[ds] / total * read_array(m.content, "params") for ds, m in by_dataset.items()],
                        axis=0)
        rounds.append({"round": round_, **stats})
    outputs = model_outputs(spec, plan, np.asarray(params), weights)
    if plan.model.evaluation is not None:
        link.progress("evaluate", spec.model.round_count, spec.model.round_count)
        requests = {d: (n, pack_request(OP_EVALUATE, spec_json, spec.model.round_count + 1, params)) for d, n in nodes.items()}
        by_dataset, stats = link.ask(requests, "evaluation", quorum=spec.quorum)
        histogram = np.sum([read_array(m.content, "histogram") for m in by_dataset.values()], axis=0)
        fisher = np.sum([read_array(m.content, "fisher") for m in by_dataset.values()], axis=0)
        outputs.update(evaluation_outputs(spec, plan, np.asarray(params), histogram, fisher,
                                          sum(w for d, w in weights.items() if d in by_dataset), len(by_dataset)))
        rounds.append({"round": spec.model.round_count + 1, "evaluation": True, **stats})
    return outputs, rounds
