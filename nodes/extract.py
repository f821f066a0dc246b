"""Reading a sector extract on the node and pseudonymising its identity codes.

Every way a file can be unusable becomes one :class:`UnusableInputError` line that says what is
wrong and what to do, and never quotes the file's content (a parser's own message can carry a raw
value, so none is passed on).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from common.errors import UnusableInputError
from schemas.contract import Contract
from schemas.identity import IdentityCheck, canonical_identity_codes

__all__ = ["Extract", "file_sha256", "pseudonymise", "read_extract"]

_PARQUET_MAGIC = b"PAR1"
_PARQUET_SUFFIXES = (".parquet", ".pq")
_CSV_SUFFIXES = (".csv", ".txt")
_OTHER_DELIMITERS = (";", "\t", "|")


@dataclass(frozen=True)
class Extract:
    """A loaded extract: the frame, how it was stored, and the file's SHA-256."""

    frame: pd.DataFrame
    format: str
    sha256: str
    size_bytes: int


def read_extract(path: Path, *, encoding: str = "utf-8", delimiter: str = ",") -> Extract:
    """Read a Parquet or CSV extract; raise ``UnusableInputError`` when it cannot be read at all."""
    name = path.name
    if not path.exists():
        raise UnusableInputError(f"{path} does not exist")
    if not path.is_file():
        raise UnusableInputError(f"{path} is not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise UnusableInputError(f"{name} is empty (0 bytes); export the extract again")
    digest = file_sha256(path)
    with path.open("rb") as handle:
        head = handle.read(4)
        handle.seek(max(size - 4, 0))
        tail = handle.read(4)
    suffix = path.suffix.lower()
    if head == _PARQUET_MAGIC or suffix in _PARQUET_SUFFIXES:
        if head != _PARQUET_MAGIC:
            raise UnusableInputError(f"{name} is not a Parquet file (no Parquet header); export it as Parquet or CSV")
        if tail != _PARQUET_MAGIC or size < 12:
            raise UnusableInputError(f"{name} is a truncated Parquet file (no footer); copy or export it again")
        return Extract(_read_parquet(path), "parquet", digest, size)
    if suffix in _CSV_SUFFIXES:
        return Extract(_read_csv(path, encoding, delimiter), "csv", digest, size)
    raise UnusableInputError(f"{name} is neither Parquet nor CSV (by content and by its '{suffix}' suffix)")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes: how a node knows whether its extract changed since it was checked."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError):
        raise UnusableInputError(f"{path.name} cannot be read as Parquet (damaged file); export it again") from None
    # Arrow strings become pandas' string dtype; dates stay as they are and are cast by the checker.
    return table.to_pandas()


def _read_csv(path: Path, encoding: str, delimiter: str) -> pd.DataFrame:
    raw = path.read_bytes()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise UnusableInputError(
            f"{path.name} is not valid {encoding} text (first bad byte at offset {error.start}); "
            f"re-export it as UTF-8 or pass --encoding"
        ) from None
    except LookupError:
        raise UnusableInputError(f"unknown text encoding {encoding!r}") from None
    header = text.split("\n", 1)[0]
    if delimiter not in header:
        for other in _OTHER_DELIMITERS:
            if other != delimiter and other in header:
                shown = "\\t" if other == "\t" else other
                raise UnusableInputError(
                    f"{path.name} looks {shown!r}-separated, not {delimiter!r}-separated; pass --delimiter '{shown}'"
                )
    names = next(csv.reader([header.rstrip("\r")], delimiter=delimiter), [])
    if not any(names):
        raise UnusableInputError(f"{path.name} has no header line")
    try:
        # Everything is read as text; the contract checker converts and counts what does not fit.
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=True),
        )
    except pa.ArrowInvalid:
        # Arrow's message quotes the offending row; say only what kind of problem it is.
        raise UnusableInputError(
            f"{path.name} cannot be parsed as {delimiter!r}-separated CSV (rows with different field counts "
            "or broken quoting)"
        ) from None
    return table.to_pandas()


def pseudonymise(frame: pd.DataFrame, contract: Contract, key: bytes) -> tuple[pd.DataFrame, IdentityCheck | None]:
    """Replace the identity codes by a keyed hash, before anything else reads the frame.

    Codes are checked by the contract's identity rule (its identifier's ``format``). Valid codes become
    32-hex-digit keyed BLAKE2b digests of their canonical spelling (stable per node key, so keys and
    rows-per-resident can still be checked, and ``811218-9876`` and ``198112189876`` are one resident);
    missing or invalid codes become null and are counted. An opaque upstream pseudonym is hashed the same
    way. Returns the new frame and the counts; ``None`` when the identifier column is absent.
    """
    column = contract.identifier
    if column not in frame.columns:
        return frame, None
    codes = frame[column]
    if codes.dtype != "str":
        codes = codes.astype("str").where(codes.notna())
    # Residents repeat across rows (yearly records): check and hash each distinct code once.
    index, uniques = pd.factorize(codes, use_na_sentinel=True)
    unique_codes = pd.Series(uniques, dtype="str")
    unique_check, canonical = canonical_identity_codes(unique_codes, contract.identity_rule)
    digests = np.full(len(uniques) + 1, None, dtype=object)  # last slot: missing or invalid
    values = canonical.to_numpy(dtype=object)
    valid = np.flatnonzero(unique_check.valid)
    digests[valid] = [hashlib.blake2b(v.encode(), digest_size=16, key=key).hexdigest() for v in values[valid]]
    row_check = unique_check.take(index)
    out = frame.copy(deep=False)
    out[column] = pd.Series(digests[np.where(index < 0, len(uniques), index)], index=frame.index, dtype="str")
    return out, row_check
