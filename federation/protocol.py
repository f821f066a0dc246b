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

__all__ = ["OP_EVALUATE", "OP_NEWTON", "OP_PREPARE", "OP_TABLE", "OP_TRAIN", "REPLY", "message_bytes", "pack_blobs", "pack_reply",
           "pack_request", "read_all", "read_array", "read_blobs", "read_prefixed", "read_value", "unpack_blobs", "unpack_request"]

OP_PREPARE = "prepare"
OP_TABLE = "table"
OP_TRAIN = "train"
OP_NEWTON = "newton"
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
        if array.size:   # Flower 1.41 cannot count an empty bytes value: an empty array travels as its shape
            record[name] = array.tobytes()
        record[name + _SHAPE] = [int(n) for n in array.shape]
    return ConfigRecord(record)  # type: ignore[arg-type]


#: the record key of a message's opaque payload (sealed envelopes, announcements): bytes by name
_BLOBS = "blobs"


def pack_blobs(blobs: Mapping[str, bytes]) -> bytes:
    """Named byte strings in one value: for each, the name's length and the name, the data's length and the data."""
    out = bytearray()
    for name, data in blobs.items():
        encoded = name.encode()
        out += len(encoded).to_bytes(4, "big") + encoded + len(data).to_bytes(8, "big") + data
    return bytes(out)


def unpack_blobs(data: bytes) -> dict[str, bytes]:
    blobs, at = {}, 0
    while at < len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        name = data[at + 4:at + 4 + size].decode()
        at += 4 + size
        length = int.from_bytes(data[at:at + 8], "big")
        if at + 8 + length > len(data):
            raise ValueError("a truncated payload")
        blobs[name] = data[at + 8:at + 8 + length]
        at += 8 + length
    return blobs


def pack_request(op: str, spec_json: str, round_: int = 0, params: np.ndarray | None = None,
                 blobs: Mapping[str, bytes] | None = None, values: Mapping[str, Value] | None = None) -> RecordDict:
    arrays = {} if params is None else {"params": params}
    record = _packed({"op": op, "spec": spec_json, "round": round_, **(values or {})}, arrays)
    if blobs:
        record[_BLOBS] = pack_blobs(blobs)
    return RecordDict({_REQUEST: record})


def unpack_request(content: RecordDict) -> tuple[str, str, int]:
    config = content.config_records[_REQUEST]
    return str(config["op"]), str(config["spec"]), int(str(config["round"]))


def pack_reply(values: Mapping[str, Value], arrays: Mapping[str, np.ndarray] | None = None,
               blobs: Mapping[str, bytes] | None = None) -> RecordDict:
    record = _packed(values, arrays or {})
    if blobs:
        record[_BLOBS] = pack_blobs(blobs)
    return RecordDict({REPLY: record})


def read_blobs(content: RecordDict) -> dict[str, bytes]:
    """The named byte strings a request or reply carries (none: an empty dict)."""
    record = _record(content)
    data = record[_BLOBS] if _BLOBS in record else b""
    if not isinstance(data, bytes):
        raise ValueError("a payload that is not bytes")
    return unpack_blobs(data)


def _record(content: RecordDict) -> ConfigRecord:
    records = content.config_records
    return records[_REQUEST] if _REQUEST in records else records[REPLY]


def read_array(content: RecordDict, name: str) -> np.ndarray:
    """An array of a request or reply, as float64 of its packed shape."""
    record = _record(content)
    shape = tuple(int(n) for n in record[name + _SHAPE])  # type: ignore[union-attr]
    data = record[name] if name in record else b""
    if not isinstance(data, bytes) or len(data) != _DTYPE.itemsize * int(np.prod(shape)):
        raise ValueError(f"array {name!r} does not match its shape {shape}")
    return np.frombuffer(data, dtype=_DTYPE).reshape(shape).astype(np.float64)


def read_prefixed(content: RecordDict, prefix: str) -> dict[str, str]:
    """The string values whose names start with ``prefix``, by the rest of their names."""
    return {k[len(prefix):]: v for k, v in _record(content).items() if k.startswith(prefix) and isinstance(v, str)}


def read_all(content: RecordDict) -> tuple[dict[str, Value], dict[str, np.ndarray], dict[str, bytes]]:
    """Every value, array and blob a reply carries."""
    record = _record(content)
    arrays = {name[:-len(_SHAPE)]: read_array(content, name[:-len(_SHAPE)]) for name in record if name.endswith(_SHAPE)}
    values = {name: value for name, value in record.items() if name != _BLOBS and name not in arrays
              and not name.endswith(_SHAPE) and isinstance(value, (str, int, float, bool))}
    return values, arrays, read_blobs(content)


def read_value(content: RecordDict, name: str) -> Value:
    value = _record(content)[name]
    assert isinstance(value, (str, int, float, bool))
    return value


def message_bytes(content: RecordDict) -> int:
    """What a message's records weigh (Flower's own count: keys and values)."""
    return sum(record.count_bytes() for record in content.values())
