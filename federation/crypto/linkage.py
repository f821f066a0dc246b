"""Study-scoped linkage without private set intersection: keyed pseudonyms on a list only the cohort's owner makes.

The register's node draws a fresh 32-byte key per study and sends it, with the sorted list of the
cohort's pseudonyms, to every participating node inside a sealed envelope (:mod:`federation.crypto.envelope`).
A pseudonym is HMAC-SHA256 (``cryptography``) of the identity code under that key, domain-separated by
the study id, truncated to 16 bytes. Each node computes the pseudonyms of its own residents and lays
its values on the list at their positions — zero where it does not serve a cohort member. No node
learns which of the cohort another sector serves; no intersection is revealed to anyone. Key and list
live in memory only and are forgotten when the study ends; the audit keeps :func:`digest`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

import numpy as np
from cryptography.hazmat.primitives import hashes, hmac

__all__ = ["PSEUDONYM_BYTES", "cohort_from_bytes", "cohort_to_bytes", "digest", "new_linkage_key", "positions",
           "pseudonyms"]

PSEUDONYM_BYTES = 16
_LABEL = b"tillit/linkage-pseudonym/v1\x00"


def new_linkage_key() -> bytes:
    return os.urandom(32)


def pseudonyms(key: bytes, study_id: str, codes: Iterable[str]) -> np.ndarray:
    """The study's pseudonym of each identity code (a 16-byte ``numpy.bytes_`` array, in the codes' order)."""
    prefix = _LABEL + study_id.encode() + b"\x00"
    base = hmac.HMAC(key, hashes.SHA256())
    base.update(prefix)
    out = []
    for code in codes:
        mac = base.copy()
        mac.update(code.encode())
        out.append(mac.finalize()[:PSEUDONYM_BYTES])
    return np.array(out, dtype=f"S{PSEUDONYM_BYTES}")


def positions(cohort: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Where each of ``own`` sits in the sorted ``cohort`` list, or -1 for a resident outside the cohort."""
    if len(cohort) == 0:
        return np.full(len(own), -1, dtype=np.int64)
    at = np.searchsorted(cohort, own)
    inside = at < len(cohort)
    found = np.zeros(len(own), dtype=bool)
    found[inside] = cohort[at[inside]] == own[inside]
    return np.where(found, at, -1).astype(np.int64)


def cohort_to_bytes(cohort: np.ndarray) -> bytes:
    return np.ascontiguousarray(cohort, dtype=f"S{PSEUDONYM_BYTES}").tobytes()


def cohort_from_bytes(data: bytes) -> np.ndarray:
    if len(data) % PSEUDONYM_BYTES:
        raise ValueError("a cohort list whose length is not a whole number of pseudonyms")
    cohort = np.frombuffer(data, dtype=f"S{PSEUDONYM_BYTES}")
    if len(cohort) > 1 and not bool(np.all(cohort[1:] > cohort[:-1])):
        raise ValueError("a cohort list that is not sorted and unique")
    return cohort


def digest(cohort: np.ndarray) -> str:
    """SHA-256 of the list (what the audit log keeps of it): shows later which list a study used, reveals nothing."""
    return hashlib.sha256(cohort_to_bytes(cohort)).hexdigest()
