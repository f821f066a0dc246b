"""Driving a cross-sector count study through its steps: relay sealed envelopes, collect noisy releases.

The driver sees what the coordinator's side may see: announcements (public keys), envelopes (their
headers and lengths; it never holds a key to open one) and the noisy counts the nodes release. It
works over any :class:`Relay` — Flower's messages in the ServerApp, direct calls in tests — so the
transcript tests read exactly what a real run moves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from federation.crypto.envelope import Envelope
from federation.privacy import CrossSectorPlan
from federation.spec import CrossSectorSpec
from federation.vertical.protocol import Step, StepReply, pair_key

__all__ = ["Released", "Relay", "run_cross_sector"]


class Relay(Protocol):
    """Sends one step to each named dataset's node and returns each node's reply (or raises StudyFailed)."""

    def exchange(self, steps: dict[str, Step]) -> dict[str, StepReply]: ...


@dataclass
class Released:
    """Every noisy count a study released, with the standard deviation of its noise."""

    cohort_size: tuple[float, float] = (0.0, 0.0)
    cases: tuple[float, float] = (0.0, 0.0)
    #: factor -> (exposed, sd), (exposed cases, sd)
    exposed: dict[str, tuple[float, float]] = field(default_factory=dict)
    exposed_cases: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: (a, b) -> (both, sd), (both cases, sd)
    both: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    both_cases: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    digests: dict[str, dict[str, str]] = field(default_factory=dict)
    #: bytes the relay moved, by step
    bytes_moved: dict[str, int] = field(default_factory=dict)


def _route(replies: dict[str, StepReply]) -> dict[str, dict[str, bytes]]:
    """Envelopes by receiver, as their (clear, authenticated) headers say; never opened here."""
    routed: dict[str, dict[str, bytes]] = {}
    for sender, reply in replies.items():
        for data in reply.envelopes.values():
            header = Envelope.from_bytes(data)
            if header.sender != sender:
                raise ValueError(f"{sender} sent an envelope that claims to come from {header.sender}")
            key = f"{header.receiver}#{header.label}#{header.sender}#{header.sequence}"
            routed.setdefault(header.receiver, {})[key] = data
    return routed


def _size(steps: dict[str, Step], replies: dict[str, StepReply]) -> int:
    sent = sum(len(b) for s in steps.values() for b in s.blobs.values())
    received = sum(len(b) for r in replies.values() for b in r.envelopes.values())
    received += sum(a.nbytes for r in replies.values() for a in r.arrays.values())
    return sent + received


def run_cross_sector(cross: CrossSectorSpec, plan: CrossSectorPlan, announcements: dict[str, bytes], relay: Relay,
                     choose_pairs: Callable[[Released], list[tuple[str, str]]],
                     progress: Callable[[str, int, int], None] = lambda phase, done, total: None) -> Released:
    """Every step of :mod:`federation.vertical.protocol`; ``choose_pairs`` ranks stage 1 and picks the pairs."""
    noise, released = plan.noise, Released()
    cohort, outcome = cross.cohort.dataset, cross.outcome.dataset
    factor_nodes = [f.dataset for f in cross.factors]
    everyone = [cohort, outcome, *factor_nodes]
    total_steps = 8

    def exchange(name: str, steps: dict[str, Step], done: int) -> dict[str, StepReply]:
        progress(name, done, total_steps)
        replies = relay.exchange(steps)
        released.bytes_moved[name] = released.bytes_moved.get(name, 0) + _size(steps, replies)
        return replies

    keys = exchange("keys", {d: Step("keys", blobs=dict(announcements)) for d in everyone}, 0)
    released.cohort_size = (float(keys[cohort].values["cohort_size"]), noise.cohort)
    routed = _route(keys)
    link = exchange("link", {d: Step("link", blobs=routed.get(d, {})) for d in everyone if d != cohort}, 1)
    released.cases = (float(link[outcome].values["cases"]), noise.outcome_stage1)
    routed = _route(link)
    factors = exchange("factors", {d: Step("factors", blobs=routed.get(d, {})) for d in factor_nodes}, 2)
    for dataset, reply in factors.items():
        names = json.loads(str(reply.values["factors"]))
        if names != list(plan.factors[dataset]):
            raise ValueError(f"{dataset} released exposed counts for other factors than the study's")
        for name, count in zip(names, reply.arrays["exposed"]):
            released.exposed[name] = (float(count), noise.local(dataset))
    opened = exchange("open", {outcome: Step("open", blobs=_route(factors).get(outcome, {}))}, 3)[outcome]
    for dataset in factor_nodes:
        sd = math.hypot(noise.factor_stage1[dataset], noise.outcome_stage1)
        for name, count in zip(plan.factors[dataset], opened.arrays[dataset]):
            released.exposed_cases[name] = (float(count), sd)
    pairs = choose_pairs(released) if plan.max_pairs else []
    if pairs:
        _pairs(cross, plan, pairs, factor_nodes, outcome, released, exchange)
    finish = exchange("finish", {d: Step("finish") for d in everyone}, 7)
    released.digests = {d: {k: str(v) for k, v in r.values.items()} for d, r in finish.items()}
    return released


def _pairs(cross: CrossSectorSpec, plan: CrossSectorPlan, pairs: list[tuple[str, str]], factor_nodes: list[str],
           outcome: str, released: Released, exchange: Callable[[str, dict[str, Step], int],
                                                                 dict[str, StepReply]]) -> None:
    noise, holder = plan.noise, plan.holder
    chosen = json.dumps([list(p) for p in pairs])
    first = exchange("pairs", {d: Step("pairs", values={"pairs": chosen}) for d in factor_nodes}, 4)
    within_sd = noise.factor_stage2
    for dataset, reply in first.items():
        within = [tuple(p) for p in json.loads(str(reply.values["within"]))]
        for (a, b), count in zip(within, reply.arrays["both"]):
            released.both[(str(a), str(b))] = (float(count), within_sd)
    routed = _route(first)
    to_outcome = dict(routed.get(outcome, {}))
    second = exchange("pairs_finish", {d: Step("pairs_finish", values={"pairs": chosen}, blobs=routed.get(d, {}))
                                       for d in factor_nodes}, 5)
    to_outcome.update(_route(second).get(outcome, {}))
    opened = exchange("pairs_open", {outcome: Step("pairs_open", blobs=to_outcome)}, 6)[outcome]
    names = json.loads(str(opened.values["names"]))
    two_terms = math.hypot(noise.factor_stage2, noise.outcome_stage2)
    counts: dict[str, float] = dict(zip(names, (float(v) for v in opened.arrays["pairs"])))
    for a, b in pairs:
        key = pair_key(a, b)
        released.both_cases[(a, b)] = (counts[f"{key}|cases"], two_terms)
        if holder[a] != holder[b]:
            released.both[(a, b)] = (counts[f"{key}|both"], two_terms)
    missing = [p for p in pairs if p not in released.both or p not in released.both_cases]
    if missing:
        raise ValueError(f"{len(missing)} pair(s) came back without their counts")

