"""The steps of a cross-sector count study and what travels in each (README: protocol and threat model).

The ServerApp (or any relay) drives the nodes step by step; every node-to-node payload is a sealed
:class:`~federation.crypto.envelope.Envelope` the relay forwards unopened. What each step carries:

    step            to                    the node receives                       it sends back
    prepare         every node            the signed spec                         its signed X25519 key (announcement)
    keys            every node            every announcement                      register: sealed cohort list for each node,
                                                                                  noisy cohort size
    link            every node but the    the register's envelope                 outcome: sealed BFV public context + Enc(y)
                    register                                                      for each factor node, noisy number of cases
    factors         factor nodes          the outcome's envelope                  noisy exposed counts; sealed flooded totals
                                                                                  (one ciphertext per factor) for the outcome
    open            outcome node          the factor nodes' envelopes             noisy exposed-case counts
    pairs           factor nodes          the chosen pairs                        noisy within-node 'both' counts; sealed totals
                                                                                  for the outcome; sealed product vectors for
                                                                                  the partner node of each pair across nodes
    pairs_finish    factor nodes          their partners' envelopes              sealed totals for the outcome
    pairs_open      outcome node          every pair envelope                     noisy pair counts
    finish          every node            —                                       digests of the list and keys; all forgotten

Each node charges its own ledger, durably, before the first step in which anything derived from its
data leaves it, and records every step as a release it makes once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

__all__ = ["STAGES", "STEPS", "VALUE_PREFIX", "Step", "StepReply", "envelope_name", "pair_key", "parse_pairs"]

#: a step's public values travel in the request record under this prefix (beside op, spec and round)
VALUE_PREFIX = "x-"

STEPS = ("keys", "link", "factors", "open", "pairs", "pairs_finish", "pairs_open", "finish")
#: the release number a node records for each step (a repeated step is refused)
STAGES = {step: number for number, step in enumerate(STEPS, start=1)}


@dataclass(frozen=True)
class Step:
    """What the relay sends a node: the step, opaque blobs (announcements, envelopes), small public values."""

    op: str
    blobs: dict[str, bytes] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class StepReply:
    """What a node answers: released values and arrays (already noisy), and sealed envelopes to forward."""

    values: dict[str, str | int | float] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    #: sealed envelopes, named by :func:`envelope_name`
    envelopes: dict[str, bytes] = field(default_factory=dict)


def envelope_name(receiver: str, label: str, sender: str) -> str:
    return f"{receiver}#{label}#{sender}"


def pair_key(a: str, b: str) -> str:
    return f"{a}:{b}"


def parse_pairs(text: str) -> list[tuple[str, str]]:
    pairs = json.loads(text)
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise ValueError("pairs are a list of [a, b]")
    return [(str(a), str(b)) for a, b in pairs]
