"""The messages between the ServerApp and the nodes: names, and packing numpy arrays."""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict

__all__ = ["OP_EVALUATE", "OP_PREPARE", "OP_TABLE", "OP_TRAIN", "pack_request", "read_array", "unpack_request"]

OP_PREPARE = "prepare"
OP_TABLE = "table"
OP_TRAIN = "train"
OP_EVALUATE = "evaluate"
_CONFIG = "tillit"


def pack_request(op: str, spec_json: str, round_: int = 0, params: np.ndarray | None = None) -> RecordDict:
    records: dict[str, ArrayRecord | MetricRecord | ConfigRecord] = {
        _CONFIG: ConfigRecord({"op": op, "spec": spec_json, "round": round_})}
    if params is not None:
        records["params"] = ArrayRecord({"params": Array(np.asarray(params, dtype=np.float64))})
    return RecordDict(records)


def unpack_request(content: RecordDict) -> tuple[str, str, int]:
    config = content.config_records[_CONFIG]
    return str(config["op"]), str(config["spec"]), int(str(config["round"]))


def read_array(content: RecordDict, name: str) -> np.ndarray:
    return content.array_records[name][name].numpy()
