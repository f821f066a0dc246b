"""The ClientApp every node runs: a thin shell around :class:`nodes.agent.NodeAgent`.

A refusal becomes a Flower error reply whose code is the refusal's reason code (see
``tillit.errors.REFUSAL_CODES``) and whose reason names the node's dataset and the budget or check;
an unexpected failure becomes code 4500 without any detail that could carry data.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from flwr.app import Context, Error, Message
from flwr.clientapp import ClientApp

from federation.protocol import OP_EVALUATE, OP_PREPARE, OP_TABLE, OP_TRAIN, pack_reply, read_array, unpack_request
from federation.spec import parse_spec
from tillit.errors import StudyRefused

app = ClientApp()
_log = logging.getLogger("tillit.node")


def _process_started() -> float:
    """Wall-clock time this process started (from /proc), to see how long Flower took to spawn it."""
    import os
    import time

    ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
    uptime = float(open("/proc/uptime").read().split()[0])
    return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")


@app.query()
def query(msg: Message, context: Context) -> Message:
    import time

    entered = time.time()
    try:
        return _answer(msg, context)
    finally:
        timing = context.node_config.get("tillit-timing")
        if timing:  # benchmarks only: where a round's time goes, written on the node itself
            import json

            with open(str(timing), "a") as log:
                log.write(json.dumps({"created": msg.metadata.created_at, "process_started": _process_started(),
                                      "entered": entered, "left": time.time()}) + "\n")


def _answer(msg: Message, context: Context) -> Message:
    from nodes.agent import NodeAgent
    from nodes.config import load_node_config

    dataset = "unknown node"
    state_dir = None
    try:
        config = load_node_config(Path(str(context.node_config["tillit-config"])))
        dataset, state_dir = config.node.dataset, config.state_dir
        agent = NodeAgent(config)
        op, spec_json, round_ = unpack_request(msg.content)
        import json

        spec = parse_spec(json.loads(spec_json), "from the server")
        values: dict[str, str | int | float] = {"dataset": dataset}
        arrays: dict[str, np.ndarray] = {}
        if op == OP_PREPARE:
            prepared = agent.prepare(spec)
            values |= {"rho_units": prepared.loss.units, **{k: float(v) for k, v in agent.budget_summary().items()}}
        elif op == OP_TABLE:
            arrays["counts"] = agent.table(spec)
        elif op == OP_TRAIN:
            params, noisy_count = agent.train_round(spec, read_array(msg.content, "params"), round_)
            arrays["params"] = params
            values["noisy_count"] = float(noisy_count)
        elif op == OP_EVALUATE:
            arrays["histogram"], arrays["fisher"] = agent.evaluate(spec, read_array(msg.content, "params"))
        else:
            raise StudyRefused(f"{dataset}: unknown request {op!r}", 4302)
        return Message(pack_reply(values, arrays), reply_to=msg)
    except StudyRefused as refusal:
        _log.warning("refused: %s", refusal.message)
        return Message(Error(code=refusal.reason_code, reason=refusal.message), reply_to=msg)
    except Exception as error:  # noqa: BLE001 - the reply must never carry the exception text
        _log.error("node %s failed while computing (%s); nothing was released; details in the node's "
                   "state directory (errors.log)", dataset, type(error).__name__)
        if state_dir is not None:   # the full traceback stays on the node, for its operator only
            import datetime as dt
            import traceback

            with open(state_dir / "errors.log", "a", encoding="utf-8") as log:
                log.write(f"--- {dt.datetime.now(dt.timezone.utc).isoformat()}\n{traceback.format_exc()}")
        return Message(Error(code=4500, reason=f"{dataset}: failed while computing; nothing was released"),
                       reply_to=msg)
