"""The ClientApp every node runs, bound to the node through :class:`NodeService`.

Federation declares what it needs from a node (this protocol); the node package implements it
(:class:`nodes.agent.NodeAgent`) and builds the app with :func:`make_client_app` — so imports run
from ``nodes`` to ``federation`` and never back. A refusal becomes a Flower error reply whose code
is the refusal's :class:`~common.errors.RefusalCode` and whose reason names the node's dataset and
the budget or check; an unexpected failure becomes code 4500 without any detail that could carry
data (the node keeps the traceback in its own state directory).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Protocol

import numpy as np
from flwr.app import Context, Error, Message
from flwr.clientapp import ClientApp

from common.errors import RefusalCode, StudyRefused
from federation.privacy import Balance, PrivacyLoss
from federation.protocol import (
    OP_EVALUATE, OP_NEWTON, OP_PREPARE, OP_TABLE, OP_TRAIN, pack_reply, read_array, read_blobs, read_prefixed, unpack_request,
)
from federation.spec import StudySpec, parse_spec
from federation.vertical.protocol import STEPS, VALUE_PREFIX, Step, StepReply

__all__ = ["NodeService", "Prepared", "make_client_app"]

_log = logging.getLogger("tillit.node")


class Prepared(Protocol):
    """What a node found when it checked a study: the ρ it would charge."""

    @property
    def loss(self) -> PrivacyLoss: ...


class NodeService(Protocol):
    """What the ClientApp asks of the node it runs on. Every method re-checks the spec and the node's
    own ledger, and charges before anything is released."""

    @property
    def dataset(self) -> str: ...

    def prepare(self, spec: StudySpec) -> Prepared: ...

    def budget(self) -> Balance: ...

    def table(self, spec: StudySpec) -> np.ndarray: ...

    def train_round(self, spec: StudySpec, params: np.ndarray, round_: int) -> tuple[np.ndarray, float]: ...

    def newton_round(self, spec: StudySpec, params: np.ndarray,
                     round_: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    def evaluate(self, spec: StudySpec, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def announce(self, spec: StudySpec) -> bytes:
        """A cross-sector study: check it as ``prepare`` does and announce this node's signed study key."""

    def cross_sector_step(self, spec: StudySpec, step: Step) -> StepReply: ...

    def record_failure(self) -> None:
        """Keep the current exception's traceback on the node, for its operator only."""


#: builds (or finds) the node's service from the SuperNode's context (``--node-config``)
ServiceFactory = Callable[[Context], NodeService]


def make_client_app(service: ServiceFactory) -> ClientApp:
    app = ClientApp()

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        return _answer(service, msg, context)

    return app


def _answer(service: ServiceFactory, msg: Message, context: Context) -> Message:
    node: NodeService | None = None
    dataset = "unknown node"
    try:
        node = service(context)
        dataset = node.dataset
        op, spec_json, round_ = unpack_request(msg.content)
        spec = parse_spec(json.loads(spec_json), "from the server")
        values: dict[str, str | int | float] = {"dataset": dataset}
        arrays: dict[str, np.ndarray] = {}
        blobs: dict[str, bytes] = {}
        if op == OP_PREPARE:
            prepared = node.prepare(spec)
            budget = node.budget()
            values |= {"rho_units": prepared.loss.units, "cap_rho": float(budget.cap.rho),
                       "spent_rho": float(budget.spent.rho), "remaining_rho": float(budget.remaining.rho)}
            if spec.cross_sector is not None:
                blobs["announcement"] = node.announce(spec)
        elif op in STEPS:
            reply = node.cross_sector_step(spec, Step(op, read_blobs(msg.content), read_prefixed(msg.content,
                                                                                                   VALUE_PREFIX)))
            values |= reply.values
            arrays |= reply.arrays
            blobs |= reply.envelopes
        elif op == OP_TABLE:
            arrays["counts"] = node.table(spec)
        elif op == OP_TRAIN:
            params, noisy_count = node.train_round(spec, read_array(msg.content, "params"), round_)
            arrays["params"] = params
            values["noisy_count"] = float(noisy_count)
        elif op == OP_NEWTON:
            arrays["gradient"], arrays["hessian"], arrays["trace"] = node.newton_round(
                spec, read_array(msg.content, "params"), round_)
        elif op == OP_EVALUATE:
            arrays["histogram"], arrays["fisher"] = node.evaluate(spec, read_array(msg.content, "params"))
        else:
            raise StudyRefused(f"{dataset}: unknown request {op!r}", RefusalCode.MALFORMED_SPEC)
        return Message(pack_reply(values, arrays, blobs), reply_to=msg)
    except StudyRefused as refusal:
        _log.warning("refused: %s", refusal.message)
        return Message(Error(code=refusal.reason_code, reason=refusal.message), reply_to=msg)
    except Exception as error:  # noqa: BLE001 - the reply must never carry the exception text
        _log.error("node %s failed while computing (%s); nothing was released; details in the node's "
                   "state directory (errors.log)", dataset, type(error).__name__)
        if node is not None:
            node.record_failure()
        return Message(Error(code=RefusalCode.NODE_FAILED,
                             reason=f"{dataset}: failed while computing; nothing was released"), reply_to=msg)
