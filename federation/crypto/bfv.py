"""Encrypted joint counts with BFV (TenSEAL 0.3.18 / Microsoft SEAL 4.x): the key holder's and the
computing node's halves, with masking and noise flooding so that only a noisy total ever opens.

Roles. The *key holder* (the outcome's node) makes a BFV key pair, sends the public context (no secret
key) and its 0/1 vector encrypted in blocks of ``N`` slots. A *computing node* multiplies each block by
its own plaintext vector, adds the blocks, and before returning the single ciphertext:

1. re-randomises it (adds a fresh encryption of zero): otherwise its second polynomial is a
   deterministic function of the node's vector that the key holder could recompute for a guess;
2. masks every slot with uniform values mod ``t`` that sum to the node's own DP noise ``eta``: the key
   holder, decrypting, sees uniformly random slots whose sum is ``count + eta``;
3. floods the ciphertext noise with a uniform polynomial ``E`` in ``[-2^b, 2^b)``, ``2^b ≥ 2^λ · N · B``
   for a bound ``B`` on the computation's noise worked out from public parameters only; without it
   the key holder, who has the secret key, reads the node's vector out of the noise term (measured:
   every slot); with it the noise is within statistical distance ``2^-(λ+1)`` of one independent of
   the vector. SEAL has no flooding: ``(E, 0)`` is written in SEAL's own uncompressed ciphertext
   format, loaded by SEAL and added;
4. switches down to the last prime (a deterministic function of the flooded ciphertext, so nothing
   is revealed; 103 kB instead of 432 kB).

The key holder decrypts and sums the slots — the masked slots mean nothing one by one — and adds its
own DP noise before releasing. A pair of factors held by two nodes: the first sends its per-block
products (re-randomised, not summed) to the second, which multiplies by its own vector and finishes as
above; its flood bound covers the first node's noise. All randomness (masks, flooding) comes from the
operating system's CSPRNG. Parameters: ``N = 8192``, SEAL's 128-bit default modulus (218 bits), ``t =
786433`` (a prime ≡ 1 mod 2N: counts up to ±393,216 decode), checked once in :class:`BfvParameters`.
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BfvParameters", "EncodedVector", "EncryptedVector", "KeyHolder", "NodeEvaluator", "flood_polynomial",
           "mask_slots", "uniform_below"]

_SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


@dataclass(frozen=True)
class BfvParameters:
    """Every BFV parameter of a study, checked once (a study's spec fixes them; all nodes agree)."""

    poly_modulus_degree: int = 8192
    plain_modulus: int = 786_433
    #: per flooded ciphertext, statistical distance at most 2^-(hiding_bits + 1)
    hiding_bits: int = 40

    def __post_init__(self) -> None:
        n, t = self.poly_modulus_degree, self.plain_modulus
        if n not in (8192, 16384):
            raise ValueError("poly_modulus_degree must be 8192 or 16384 (4096 leaves no room to flood)")
        if t % (2 * n) != 1 or any(t % p == 0 for p in range(2, int(t**0.5) + 1)):
            raise ValueError("plain_modulus must be a prime congruent to 1 mod 2N (batching)")
        if not 32 <= self.hiding_bits <= 64:
            raise ValueError("hiding_bits must be in [32, 64]")

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree

    def blocks(self, length: int) -> int:
        return -(-length // self.slots)

    @property
    def largest_count(self) -> int:
        """Totals (count plus noise) beyond ± this do not decode."""
        return self.plain_modulus // 2


# -- randomness for masks and flooding (the OS CSPRNG; never numpy's generator) --------------------------------

def uniform_below(bound: int, size: int) -> np.ndarray:
    """``size`` integers uniform in [0, bound), by rejection sampling 64-bit words from ``os.urandom``."""
    limit = np.uint64((2**64 // bound) * bound - 1)
    out = np.empty(size, dtype=np.uint64)
    filled = 0
    while filled < size:
        words = np.frombuffer(os.urandom(8 * (size - filled)), dtype="<u8")
        words = words[words <= limit]
        out[filled:filled + words.size] = words % np.uint64(bound)
        filled += words.size
    return out


def mask_slots(t: int, slots: int, total: int) -> np.ndarray:
    """Uniform slot values mod ``t`` conditioned on summing to ``total`` mod ``t`` (exactly uniform given the sum)."""
    masks = uniform_below(t, slots)
    masks[-1] = (total - int(masks[:-1].sum(dtype=np.uint64)) % t) % t
    return masks


def flood_polynomial(n: int, bits: int, primes: list[int]) -> np.ndarray:
    """A polynomial with coefficients uniform in [-2^bits, 2^bits), as residues mod each prime: (len(primes), n)."""
    width = bits + 1
    words = -(-width // 64)
    raw = np.frombuffer(os.urandom(8 * n * words), dtype="<u8").reshape(n, words).copy()
    top = width - 64 * (words - 1)
    if top < 64:
        raw[:, words - 1] &= np.uint64((1 << top) - 1)
    piece = min(16, 63 - max(q.bit_length() for q in primes))
    mask = np.uint64((1 << piece) - 1)
    pieces = []
    for start in range(0, width, piece):
        word, offset = divmod(start, 64)
        value = raw[:, word] >> np.uint64(offset)
        if offset + piece > 64 and word + 1 < words:
            value |= raw[:, word + 1] << np.uint64(64 - offset)
        pieces.append((start, value & mask))
    out = np.empty((len(primes), n), dtype=np.uint64)
    for row, q in enumerate(primes):
        modulus = np.uint64(q)
        total = np.zeros(n, dtype=np.uint64)
        for index, (start, value) in enumerate(pieces):
            total += (value * np.uint64(pow(2, start, q))) % modulus
            if index % 8 == 7:
                total %= modulus
        out[row] = (total % modulus + modulus - np.uint64(pow(2, bits, q))) % modulus
    return out


# -- SEAL objects as bytes (sealapi saves and loads through files only) -----------------------------------------

@contextmanager
def _scratch() -> Iterator[str]:
    descriptor, path = tempfile.mkstemp(prefix="tillit-bfv-", dir=_SCRATCH)
    os.close(descriptor)
    try:
        yield path
    finally:
        os.unlink(path)


def _save(obj: Any) -> bytes:
    with _scratch() as path:
        obj.save(path)
        with open(path, "rb") as handle:
            return handle.read()


def _load_ciphertext(sealapi: Any, context: Any, data: bytes) -> Any:
    with _scratch() as path:
        with open(path, "wb") as handle:
            handle.write(data)
        ciphertext = sealapi.Ciphertext(context)
        ciphertext.load(context, path)
        return ciphertext


def _seal_header(total: int, version: tuple[int, int]) -> bytes:
    # SEALHeader: magic 0xA15E, header size 16, version major and minor, compression none, reserved, size
    return struct.pack("<HBBBBHQ", 0xA15E, 16, version[0], version[1], 0, 0, total)


def _ciphertext_bytes(parms_id: list[int], polys: np.ndarray, version: tuple[int, int]) -> bytes:
    """SEAL 4.x ``Ciphertext::save`` layout, uncompressed: parms_id, NTT flag, size, N, k, scale,
    correction factor, then the coefficients (poly-major, prime, coefficient) as a DynArray."""
    size, k, n = polys.shape
    body = struct.pack("<4Q", *parms_id) + struct.pack("<B", 0) + struct.pack("<3Q", size, n, k)
    body += struct.pack("<d", 1.0) + struct.pack("<Q", 1)
    array = struct.pack("<Q", polys.size) + np.ascontiguousarray(polys, dtype="<u8").tobytes()
    body += _seal_header(16 + len(array), version) + array
    return _seal_header(16 + len(body), version) + body


class _Seal:
    """The SEAL objects of one context (with or without the secret key)."""

    def __init__(self, context: Any, params: BfvParameters) -> None:
        import tenseal.sealapi as sealapi

        self.api = sealapi
        self.params = params
        self.context = context
        self.seal = context.seal_context().data
        self.evaluator = sealapi.Evaluator(self.seal)
        self.encoder = sealapi.BatchEncoder(self.seal)
        self.encryptor = sealapi.Encryptor(self.seal, context.public_key().data)
        parms = self.seal.first_context_data().parms()
        if (parms.poly_modulus_degree(), parms.plain_modulus().value()) != (params.poly_modulus_degree,
                                                                            params.plain_modulus):
            raise ValueError("the BFV context does not have the study's parameters")
        self.first = self.seal.first_parms_id()
        self.last = self.seal.last_parms_id()
        self.version = self._version()

    def _version(self) -> tuple[int, int]:
        plain = self.api.Plaintext("1")
        header = self.api.Serialization.SEALHeader()
        with _scratch() as path:
            plain.save(path)
            self.api.Serialization.LoadHeader(path, header, True)
        return int(header.version_major), int(header.version_minor)

    def primes(self, parms_id: Any) -> list[int]:
        return [int(m.value()) for m in self.seal.get_context_data(parms_id).parms().coeff_modulus()]

    def encode(self, values: np.ndarray) -> Any:
        plain = self.api.Plaintext()
        padded = np.zeros(self.params.slots, dtype=np.uint64)
        padded[:len(values)] = np.asarray(values, dtype=np.int64) % self.params.plain_modulus
        self.encoder.encode(padded.tolist(), plain)
        return plain

    def encrypt_blocks(self, values: np.ndarray) -> list[bytes]:
        out = []
        for block in range(self.params.blocks(len(values))):
            ciphertext = self.api.Ciphertext(self.seal)
            self.encryptor.encrypt(self.encode(values[block * self.params.slots:(block + 1) * self.params.slots]),
                                   ciphertext)
            out.append(_save(ciphertext))
        return out

    def zero(self, parms_id: Any) -> Any:
        ciphertext = self.api.Ciphertext(self.seal)
        self.encryptor.encrypt_zero(parms_id, ciphertext)
        return ciphertext

    def load(self, data: bytes) -> Any:
        try:
            return _load_ciphertext(self.api, self.seal, data)
        except (RuntimeError, ValueError):
            raise ValueError("a ciphertext that does not belong to this study's BFV context") from None


class KeyHolder:
    """The outcome's node: the only holder of the study's BFV secret key (in memory, never written)."""

    def __init__(self, params: BfvParameters) -> None:
        import tenseal as ts

        self.params = params
        context = ts.context(ts.SCHEME_TYPE.BFV, poly_modulus_degree=params.poly_modulus_degree,
                             plain_modulus=params.plain_modulus, n_threads=1)
        self._seal = _Seal(context, params)
        self._decryptor = self._seal.api.Decryptor(self._seal.seal, context.secret_key().data)

    def public_context(self) -> bytes:
        """Parameters and public key only: no secret key, no relinearisation or Galois keys."""
        return bytes(self._seal.context.serialize(save_public_key=True, save_secret_key=False,
                                                  save_galois_keys=False, save_relin_keys=False))

    def encrypt(self, values: np.ndarray) -> list[bytes]:
        """``values`` (non-negative integers) encrypted in blocks of ``N`` slots."""
        return self._seal.encrypt_blocks(values)

    def slots(self, ciphertext: bytes) -> np.ndarray:
        """Every slot of a returned ciphertext, decrypted (masked slots: uniform noise one by one)."""
        plain = self._seal.api.Plaintext()
        self._decryptor.decrypt(self._seal.load(ciphertext), plain)
        return np.array(self._seal.encoder.decode_uint64(plain), dtype=np.uint64)

    def open_total(self, ciphertext: bytes) -> int:
        """The total a computing node returned: the slots' sum mod ``t``, centred (count plus its noise)."""
        total = int(self.slots(ciphertext).sum(dtype=np.uint64)) % self.params.plain_modulus
        return total - self.params.plain_modulus if total > self.params.plain_modulus // 2 else total

    def noise_budget(self, ciphertext: bytes) -> int:
        """Bits of noise budget left in a ciphertext (diagnostics and tests)."""
        return int(self._decryptor.invariant_noise_budget(self._seal.load(ciphertext)))

    def secret_key_for_tests(self) -> Any:
        return self._seal.context.secret_key()


@dataclass
class EncryptedVector:
    """A vector encrypted under the key holder's key, blocks in NTT form, ready to multiply."""

    blocks: list[Any]
    #: a bound on each block's noise (public): what the flood after a product must cover
    noise_bound: float


@dataclass
class EncodedVector:
    """A computing node's own vector as NTT plaintexts; ``None`` for an all-zero block (skipped)."""

    blocks: list[Any | None]


class NodeEvaluator:
    """A computing node's side: the key holder's public context only; products, masks, flooding."""

    def __init__(self, public_context: bytes, params: BfvParameters) -> None:
        import tenseal as ts

        try:
            context = ts.context_from(public_context, n_threads=1)
        except Exception:   # noqa: BLE001 - TenSEAL raises its own kinds for bytes it cannot parse
            raise ValueError("the key holder's public context cannot be read") from None
        if context.has_secret_key():
            raise ValueError("the key holder sent a context with its secret key; refusing to hold it")
        self.params = params
        self._seal = _Seal(context, params)
        n, t = params.poly_modulus_degree, params.plain_modulus
        #: an honest SEAL encryption's noise: it encrypts at the key level and switches down, leaving rounding
        self._fresh = n / 2 + 2
        self._times_plain = n * (t // 2)

    # -- inputs ---------------------------------------------------------------------------------------------
    def load(self, blocks: list[bytes], noise_bound: float | None = None) -> EncryptedVector:
        loaded = []
        for data in blocks:
            ciphertext = self._seal.load(data)
            if ciphertext.parms_id() != self._seal.first:
                raise ValueError("an encrypted block is not at the first level of the study's parameters")
            self._seal.evaluator.transform_to_ntt_inplace(ciphertext)
            loaded.append(ciphertext)
        return EncryptedVector(loaded, self._fresh if noise_bound is None else noise_bound)

    def encrypt(self, values: np.ndarray) -> list[bytes]:
        """This node's own vector encrypted under the key holder's public key (for a pair count without y)."""
        return self._seal.encrypt_blocks(values)

    def encode(self, values: np.ndarray) -> EncodedVector:
        out: list[Any | None] = []
        for block in range(self.params.blocks(len(values))):
            part = values[block * self.params.slots:(block + 1) * self.params.slots]
            if not np.any(part):
                out.append(None)    # SEAL refuses a product with an all-zero plaintext ("transparent")
                continue
            plain = self._seal.encode(part)
            self._seal.evaluator.transform_to_ntt_inplace(plain, self._seal.first)
            out.append(plain)
        return EncodedVector(out)

    # -- outputs --------------------------------------------------------------------------------------------
    def total(self, encrypted: EncryptedVector, own: EncodedVector, eta: int) -> bytes:
        """Σ_i enc_i · own_i, re-randomised, masked to sum to ``count + eta``, flooded and switched down."""
        if len(encrypted.blocks) != len(own.blocks):
            raise ValueError("the encrypted and the own vector have different lengths")
        evaluator = self._seal.evaluator
        accumulated, product = None, self._seal.api.Ciphertext(self._seal.seal)
        for block, plain in zip(encrypted.blocks, own.blocks):
            if plain is None:
                continue
            if accumulated is None:
                accumulated = self._seal.api.Ciphertext(self._seal.seal)
                evaluator.multiply_plain(block, plain, accumulated)
            else:
                evaluator.multiply_plain(block, plain, product)
                evaluator.add_inplace(accumulated, product)
        if accumulated is None:
            accumulated = self._seal.zero(self._seal.first)
        else:
            evaluator.transform_from_ntt_inplace(accumulated)
        bound = encrypted.noise_bound * self._times_plain * len(encrypted.blocks) + self._fresh + 1
        return self._finish(accumulated, eta, bound)

    @property
    def product_bound(self) -> float:
        """A public bound on the noise of each block :meth:`products` returns (what the second node of a pair
        loads them with: it computes the bound itself, never takes it from the first)."""
        return self._fresh * self._times_plain + self._fresh

    def products(self, encrypted: EncryptedVector, own: EncodedVector) -> tuple[list[bytes], float]:
        """Per block enc_i · own_i, re-randomised and not summed (the first half of a pair); with the
        public bound on each block's noise, which the second node's flood must cover."""
        out = []
        for block, plain in zip(encrypted.blocks, own.blocks):
            if plain is None:
                ciphertext = self._seal.zero(self._seal.first)
            else:
                ciphertext = self._seal.api.Ciphertext(self._seal.seal)
                self._seal.evaluator.multiply_plain(block, plain, ciphertext)
                self._seal.evaluator.transform_from_ntt_inplace(ciphertext)
                self._seal.evaluator.add_inplace(ciphertext, self._seal.zero(ciphertext.parms_id()))
            out.append(_save(ciphertext))
        return out, encrypted.noise_bound * self._times_plain + self._fresh

    def flood_bits(self, bound: float) -> int:
        """2^bits ≥ 2^λ · N · bound: the flooded noise is within 2^-(λ+1) of independent of the inputs."""
        return int(math.ceil(math.log2(bound) + self.params.hiding_bits + math.log2(self.params.poly_modulus_degree)))

    def _finish(self, ciphertext: Any, eta: int, bound: float) -> bytes:
        seal, evaluator = self._seal, self._seal.evaluator
        evaluator.add_inplace(ciphertext, seal.zero(ciphertext.parms_id()))
        evaluator.add_plain_inplace(ciphertext, seal.encode(mask_slots(self.params.plain_modulus, self.params.slots,
                                                                       eta).astype(np.int64)))
        self._flood(ciphertext, self.flood_bits(bound))
        evaluator.mod_switch_to_inplace(ciphertext, seal.last)
        return _save(ciphertext)

    def _flood(self, ciphertext: Any, bits: int) -> None:
        seal = self._seal
        parms_id = ciphertext.parms_id()
        primes = seal.primes(parms_id)
        if bits + math.log2(self.params.plain_modulus) + 1 >= sum(math.log2(q) for q in primes):
            raise ValueError(f"a flood of 2^{bits} does not fit this ciphertext's modulus")
        polys = np.zeros((2, len(primes), self.params.poly_modulus_degree), dtype=np.uint64)
        polys[0] = flood_polynomial(self.params.poly_modulus_degree, bits, primes)
        flood = _load_ciphertext(seal.api, seal.seal, _ciphertext_bytes(list(parms_id), polys, seal.version))
        seal.evaluator.add_inplace(ciphertext, flood)
