"""The messages between the ServerApp and the nodes: one record per message, arrays packed into it.

Every message, request or reply, holds a single ``ConfigRecord``; numpy arrays travel in it as
little-endian float64 bytes plus their shape. Flower 1.41 moves each record, each ``Array`` and each
``ArrayChunk`` of a message as a separate object — one HTTP request per object per hop (ServerApp →
SuperLink → SuperNode → ClientApp and back) — so one ``ConfigRecord`` makes a message three
objects where a ``ConfigRecord`` plus an ``ArrayRecord`` made it six: half the requests of every hop.
Nothing here is private or secret: requests carry the signed spec and public parameters; replies
carry only what a node's privacy module already released.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from flwr.app import ConfigRecord, RecordDict

__all__ = ["OP_EVALUATE", "OP_PREPARE", "OP_TABLE", "OP_TRAIN", "REPLY", "message_bytes", "pack_reply",
           "pack_request", "read_array", "read_value", "unpack_request"]

OP_PREPARE = "prepare"
OP_TABLE = "table"
OP_TRAIN = "train"
OP_EVALUATE = "evaluate"
_REQUEST = "tillit"
#: the record every reply holds
REPLY = "node"
_SHAPE = ".shape"
_DTYPE = np.dtype("<f8")

Value = str | int | float | bool


def _packed(values: Mapping[str, Value], arrays: Mapping[str, np.ndarray]) -> ConfigRecord:
    record: dict[str, Value | bytes | list[int]] = dict(values)
    for name, array in arrays.items():
        array = np.asarray(array, dtype=_DTYPE)
        record[name] = array.tobytes()
        record[name + _SHAPE] = [int(n) for n in array.shape]
    return ConfigRecord(record)  # type: ignore[arg-type]


def pack_request(op: str, spec_json: str, round_: int = 0, params: np.ndarray | None = None) -> RecordDict:
    arrays = {} if params is None else {"params": params}
    return RecordDict({_REQUEST: _packed({"op": op, "spec": spec_json, "round": round_}, arrays)})


def unpack_request(content: RecordDict) -> tuple[str, str, int]:
    config = content.config_records[_REQUEST]
    return str(config["op"]), str(config["spec"]), int(str(config["round"]))


def pack_reply(values: Mapping[str, Value], arrays: Mapping[str, np.ndarray] | None = None) -> RecordDict:
    return RecordDict({REPLY: _packed(values, arrays or {})})


def _record(content: RecordDict) -> ConfigRecord:
    records = content.config_records
    return records[_REQUEST] if _REQUEST in records else records[REPLY]


def read_array(content: RecordDict, name: str) -> np.ndarray:
    """An array of a request or reply, as float64 of its packed shape."""
    record = _record(content)
    shape = tuple(int(n) for n in record[name + _SHAPE])  # type: ignore[union-attr]
    data = record[name]
    if not isinstance(data, bytes) or len(data) != _DTYPE.itemsize * int(np.prod(shape)):
        raise ValueError(f"array {name!r} does not match its shape {shape}")
    return np.frombuffer(data, dtype=_DTYPE).reshape(shape).astype(np.float64)


def read_value(content: RecordDict, name: str) -> Value:
    value = _record(content)[name]
    assert isinstance(value, (str, int, float, bool))
    return value


def message_bytes(content: RecordDict) -> int:
    """What a message's records weigh (Flower's own count: keys and values)."""
    return sum(record.count_bytes() for record in content.values())
