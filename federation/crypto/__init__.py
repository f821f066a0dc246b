"""The cryptography of cross-sector studies — keys, envelopes, linkage pseudonyms, encrypted counts.

Built from ``cryptography``'s primitives (X25519, HKDF-SHA256, AES-256-GCM, ECDSA P-384, HMAC-SHA256)
and TenSEAL's BFV (Microsoft SEAL); the protocol and its threat model are in the README. The only
package besides the privacy module (noise) that draws random values: keys, masks and flooding noise.
"""

from federation.crypto.bfv import BfvParameters, KeyHolder, NodeEvaluator
from federation.crypto.envelope import Announcement, Envelope, EnvelopeError, StudyKeys, load_identity_public_key
from federation.crypto.linkage import (
    cohort_from_bytes, cohort_to_bytes, digest, new_linkage_key, positions, pseudonyms,
)

__all__ = ["Announcement", "BfvParameters", "Envelope", "EnvelopeError", "KeyHolder", "NodeEvaluator", "StudyKeys",
           "cohort_from_bytes", "cohort_to_bytes", "digest", "load_identity_public_key", "new_linkage_key",
           "positions", "pseudonyms"]
