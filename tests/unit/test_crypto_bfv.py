"""BFV totals (``federation/crypto/bfv.py``): correctness, and what the key holder can and cannot read.

The key holder owns the secret key. The privacy tests look at what a computing node returns the way
the key holder can: slot by slot (``KeyHolder.slots``), and through the exact noise term
``c0 + c1·s − (Q/t)·m`` of a ciphertext (``_SecretKeyView``, the prototype's ``noise_tools``). Each
privacy test has a power check: the same statistic, applied to a node with that protection switched
off, detects the leak. Without it a privacy test could pass without testing anything.

Randomness. y and x come from numpy generators with fixed seeds. Masks, flooding noise and SEAL's
encryption randomness come from the OS CSPRNG and cannot be seeded. Every statistical assertion on
them therefore uses a threshold that an honest run crosses with probability below 1e-6:
p-values are compared with ``ALPHA = 1e-7``; a correlation of N = 8192 independent pairs must stay
below ``6/√N`` (a 6σ event, two-sided probability 2·10^-9), or, where the null spread is not 1/√N,
below 6 times the spread measured over 63 unrelated guesses. Each test notes the extreme values seen
over 40 or more fresh key pairs (and the whole file passed with 25 other seeds), all far from these
thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import tenseal as ts
import tenseal.sealapi as sealapi
from scipy import stats

from federation.crypto import bfv
from federation.crypto.bfv import BfvParameters, KeyHolder, NodeEvaluator, flood_polynomial, mask_slots, uniform_below

SEED = 20_250_611
N = 8192
T = 786_433
#: p-value threshold for tests on unseedable randomness (false alarm probability 1e-7 per assertion)
ALPHA = 1e-7
#: |corr| · √N bound for independent vectors of length N (6σ)
CORR_SIGMAS = 6.0
#: 20,000 residents: three blocks of N slots, the last one partly empty
RESIDENTS = 20_000


# -- what the key holder can compute with its secret key ---------------------------------------------------------

class _SecretKeyView:
    """The key holder's view of a ciphertext beyond decryption: its coefficients, the exact noise term, and
    the c1 it can recompute from its own Enc(y) for a guessed x. Built from the public context and
    ``secret_key_for_tests()`` only."""

    def __init__(self, holder: KeyHolder, sample: bytes) -> None:
        self._context = ts.context_from(holder.public_context(), n_threads=1)
        self.seal = self._context.seal_context().data
        self.t = holder.params.plain_modulus
        self.n = holder.params.poly_modulus_degree
        self.version = (sample[3], sample[4])            # SEALHeader: magic, size, major, minor
        self.decryptor = sealapi.Decryptor(self.seal, holder.secret_key_for_tests().data)
        self.encoder = sealapi.BatchEncoder(self.seal)
        self.evaluator = sealapi.Evaluator(self.seal)
        self.first, self.last = self.seal.first_parms_id(), self.seal.last_parms_id()
        self.secret = self._secret_key()

    def primes(self, parms_id: Any) -> list[int]:
        return [int(m.value()) for m in self.seal.get_context_data(parms_id).parms().coeff_modulus()]

    def load(self, data: bytes) -> Any:
        return bfv._load_ciphertext(sealapi, self.seal, data)

    @staticmethod
    def coefficients(ciphertext: Any) -> np.ndarray:
        """(size, primes, N) residues, read one by one (sealapi gives no buffer)."""
        size, k, n = ciphertext.size(), ciphertext.coeff_modulus_size(), ciphertext.poly_modulus_degree()
        flat = np.fromiter((ciphertext[i] for i in range(size * k * n)), dtype=np.uint64, count=size * k * n)
        return flat.reshape(size, k, n)

    def _plain_coefficients(self, plain: Any) -> np.ndarray:
        out = np.zeros(self.n, dtype=np.int64)
        count = plain.coeff_count()
        out[:count] = np.fromiter((plain[i] for i in range(count)), dtype=np.int64, count=count)
        return out

    def _secret_key(self) -> np.ndarray:
        """s in coefficient form: the crafted ciphertext (0, Δ) has phase Δ·s, so it decrypts to s mod t."""
        primes = self.primes(self.first)
        delta = math.prod(primes) // self.t
        polys = np.zeros((2, len(primes), self.n), dtype=np.uint64)
        polys[1, :, 0] = [delta % q for q in primes]
        plain = sealapi.Plaintext()
        self.decryptor.decrypt(self.load(bfv._ciphertext_bytes(list(self.first), polys, self.version)), plain)
        secret = self._plain_coefficients(plain)
        secret[secret == self.t - 1] = -1
        assert set(np.unique(secret).tolist()) <= {-1, 0, 1}, "secret key extraction failed"
        return secret

    def noise(self, data: bytes) -> np.ndarray:
        """The exact noise term [c0 + c1·s − (Q/t)·m]_Q of a ciphertext, centred, as floats."""
        ciphertext = self.load(data)
        primes = self.primes(ciphertext.parms_id())
        coefficients = self.coefficients(ciphertext)
        modulus = math.prod(primes)
        phase = np.zeros(self.n, dtype=object)
        for row, q in enumerate(primes):
            residue = coefficients[0, row].astype(object) % q
            c1 = coefficients[1, row].copy()
            shift = 0
            while np.any(c1):                   # c1·s exactly: 15-bit limbs keep the float FFT exact
                limb = (c1 & np.uint64(0x7FFF)).astype(np.float64)
                product = np.rint(_negacyclic(limb, self.secret.astype(np.float64))).astype(np.int64)
                residue = (residue + (product % q).astype(object) * pow(2, shift, q)) % q
                c1 >>= np.uint64(15)
                shift += 15
            rest = modulus // q
            phase = (phase + residue * (rest * pow(rest, -1, q) % modulus)) % modulus
        plain = sealapi.Plaintext()
        self.decryptor.decrypt(ciphertext, plain)
        message = self._plain_coefficients(plain).astype(object)
        scaled = (phase * self.t - modulus * message) % (modulus * self.t)     # t·noise mod tQ
        scaled = np.where(scaled > modulus * self.t // 2, scaled - modulus * self.t, scaled)
        return np.array([float(value) / self.t for value in scaled])

    def plain_polynomial(self, values: np.ndarray) -> np.ndarray:
        """Centred coefficients of the batch-encoded plaintext of a slot vector (what multiply_plain uses)."""
        plain = sealapi.Plaintext()
        padded = np.zeros(self.n, dtype=np.uint64)
        padded[:len(values)] = values
        self.encoder.encode(padded.tolist(), plain)
        coefficients = self._plain_coefficients(plain)
        return np.where(coefficients > self.t // 2, coefficients - self.t, coefficients)

    def decode(self, coefficients: np.ndarray) -> np.ndarray:
        """The slots of the plaintext polynomial with these (integer) coefficients."""
        residues = np.mod(coefficients.astype(np.int64), self.t)
        terms = [f"{int(c):X}x^{i}" for i, c in reversed(list(enumerate(residues))) if c]
        plain = sealapi.Plaintext(" + ".join(terms).replace("x^0", "") if terms else "0")
        return np.array(self.encoder.decode_uint64(plain), dtype=np.int64)

    def prediction(self, e_y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The noise the key holder expects from a product by x, before flooding: e_y·p_x."""
        return _negacyclic(e_y, self.plain_polynomial(x).astype(np.float64))

    def c1(self, data: bytes) -> np.ndarray:
        return np.asarray(self.coefficients(self.load(data))[1])

    def guess_c1(self, encrypted_y: list[bytes], x: np.ndarray) -> np.ndarray:
        """c1 of a returned total for a guessed x, recomputed from the key holder's own Enc(y): Σ_b c1(Enc(y_b))·p_b,
        switched to the last prime. Masks and flooding touch c0 only, so without re-randomisation this is
        exactly the c1 a node returns."""
        accumulated = None
        for block, data in enumerate(encrypted_y):
            ciphertext = self.load(data)
            self.evaluator.transform_to_ntt_inplace(ciphertext)
            plain = sealapi.Plaintext()
            padded = np.zeros(self.n, dtype=np.uint64)
            part = x[block * self.n:(block + 1) * self.n]
            padded[:len(part)] = part
            self.encoder.encode(padded.tolist(), plain)
            self.evaluator.transform_to_ntt_inplace(plain, self.first)
            product = sealapi.Ciphertext(self.seal)
            self.evaluator.multiply_plain(ciphertext, plain, product)
            if accumulated is None:
                accumulated = product
            else:
                self.evaluator.add_inplace(accumulated, product)
        assert accumulated is not None
        self.evaluator.transform_from_ntt_inplace(accumulated)
        self.evaluator.mod_switch_to_inplace(accumulated, self.last)
        return np.asarray(self.coefficients(accumulated)[1])


def _twisted_fft(a: np.ndarray) -> np.ndarray:
    """The values of a polynomial at the roots of X^N + 1."""
    return np.asarray(np.fft.fft(a * _twist(len(a))))


def _twist(n: int) -> np.ndarray:
    return np.asarray(np.exp(1j * np.pi * np.arange(n) / n))


def _negacyclic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a·b mod X^N + 1 over the reals."""
    return np.asarray((np.fft.ifft(_twisted_fft(a) * _twisted_fft(b)) / _twist(len(a))).real)


def _divide_negacyclic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b in R[X]/(X^N + 1), rounded to integers: the key holder's attack p̂ = noise / e_y."""
    return np.asarray(np.rint((np.fft.ifft(_twisted_fft(a) / _twisted_fft(b)) / _twist(len(a))).real))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


# -- nodes with one protection switched off (power checks) --------------------------------------------------------

class _KeepTopLevel:
    """A SEAL evaluator whose final modswitch does nothing, so a test can read the flooded ciphertext at
    the level where the flood is added (the modswitch that follows is a deterministic function of it)."""

    def __init__(self, evaluator: Any) -> None:
        self._evaluator = evaluator

    def __getattr__(self, name: str) -> Any:
        return getattr(self._evaluator, name)

    def mod_switch_to_inplace(self, ciphertext: Any, parms_id: Any) -> None:
        pass


@dataclass
class _Node:
    evaluator: NodeEvaluator
    #: flood exponents the node computed, one per returned ciphertext (also when the flood is switched off)
    flood_bits: list[int]


def _node(public: bytes, params: BfvParameters, *, flood: bool = True, modswitch: bool = True,
          rerandomise: bool = True) -> _Node:
    evaluator = NodeEvaluator(public, params)
    recorded: list[int] = []
    real_flood = evaluator._flood

    def recorded_flood(ciphertext: Any, bits: int) -> None:
        recorded.append(bits)
        if flood:
            real_flood(ciphertext, bits)

    evaluator._flood = recorded_flood  # type: ignore[method-assign]
    if not modswitch:
        evaluator._seal.evaluator = _KeepTopLevel(evaluator._seal.evaluator)
    if not rerandomise:
        seal = evaluator._seal

        def trivial_zero(parms_id: Any) -> Any:        # (0, 0): adding it changes nothing
            polys = np.zeros((2, len(seal.primes(parms_id)), params.poly_modulus_degree), dtype=np.uint64)
            return bfv._load_ciphertext(seal.api, seal.seal, bfv._ciphertext_bytes(list(parms_id), polys,
                                                                                  seal.version))

        seal.zero = trivial_zero  # type: ignore[method-assign]
    return _Node(evaluator, recorded)


def _unmasked(t: int, slots: int, total: int) -> np.ndarray:
    return np.zeros(slots, dtype=np.uint64)


def _partial_sums(product: np.ndarray) -> np.ndarray:
    """What slot j holds before masking: Σ_b x_{bN+j}·y_{bN+j}."""
    blocks = -(-len(product) // N)
    padded = np.zeros(blocks * N, dtype=np.int64)
    padded[:len(product)] = product
    return np.asarray(padded.reshape(blocks, N).sum(axis=0))


# -- fixtures -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def params() -> BfvParameters:
    return BfvParameters()


@pytest.fixture(scope="module")
def holder(params: BfvParameters) -> KeyHolder:
    return KeyHolder(params)


@pytest.fixture(scope="module")
def public(holder: KeyHolder) -> bytes:
    return holder.public_context()


@pytest.fixture(scope="module")
def evaluator(public: bytes, params: BfvParameters) -> NodeEvaluator:
    return NodeEvaluator(public, params)


@dataclass(frozen=True)
class _Outcome:
    y: np.ndarray
    encrypted: list[bytes]


@pytest.fixture(scope="module")
def outcome(holder: KeyHolder) -> _Outcome:
    """The key holder's 0/1 outcome over three blocks, encrypted."""
    y = np.random.default_rng(SEED).integers(0, 2, RESIDENTS)
    return _Outcome(y, holder.encrypt(y))


@dataclass(frozen=True)
class _OneBlock:
    """One block, so that the noise of a product is e_y·p_x plus small terms."""

    y: np.ndarray
    encrypted: list[bytes]
    #: the fresh noise of Enc(y), which the key holder knows
    e_y: np.ndarray
    x: np.ndarray
    #: guesses: the same count x·y with a different support, and x with one resident flipped
    same_count: np.ndarray
    one_off: np.ndarray


@pytest.fixture(scope="module")
def view(holder: KeyHolder, outcome: _Outcome) -> _SecretKeyView:
    return _SecretKeyView(holder, outcome.encrypted[0])


def _divisible_encryption(holder: KeyHolder, view: _SecretKeyView, y: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    """An Enc(y) whose noise e_y the key holder can divide by, and e_y. Dividing the node's noise e_y·p_x + e_r by
    e_y leaves p_x + e_r/e_y; the key holder, knowing s and e_y, predicts the spread of e_r/e_y: E|FFT(e_r)|² =
    N(2 + |FFT(s)|²)/12 for the node's fresh Enc(0) and mask rounding (checked against measured noise: ratio
    1.00). It keeps an encryption whose predicted spread is at most 0.04 (78 % of them; it looks like any other):
    rounding then fails with probability < 1e-7 (sub-Gaussian bound; measured worst error 0.21 < 0.5 in 7,000
    tries; 0 failures in 600 attacks on real ciphertexts). Without this choice the plain division failed for
    2 of 160 fresh key pairs (an FFT value of e_y near 0)."""
    expected = view.n * (2 + np.abs(_twisted_fft(view.secret.astype(np.float64))) ** 2) / 12
    for _ in range(20):
        encrypted = holder.encrypt(y)
        e_y = view.noise(encrypted[0])
        if math.sqrt(float(np.sum(expected / np.abs(_twisted_fft(e_y)) ** 2))) / view.n <= 0.04:
            return encrypted, e_y
    raise AssertionError("20 encryptions in a row unfit for division (each is fit with probability 0.78)")


@pytest.fixture(scope="module")
def one_block(holder: KeyHolder, view: _SecretKeyView) -> _OneBlock:
    rng = np.random.default_rng(SEED + 1)
    y = rng.integers(0, 2, N)
    encrypted, e_y = _divisible_encryption(holder, view, y)
    x, other = rng.integers(0, 2, N), rng.integers(0, 2, N)
    gap = int(x @ y - other @ y)                      # move `other`'s count onto x's, inside y's support
    flip = np.flatnonzero((y == 1) & (other == (0 if gap > 0 else 1)))[:abs(gap)]
    other[flip] = 1 if gap > 0 else 0
    assert int(x @ y) == int(other @ y) and not np.array_equal(x, other)
    one_off = x.copy()
    one_off[int(rng.integers(N))] ^= 1
    return _OneBlock(y, encrypted, e_y, x, other, one_off)


def _returned(node: _Node, encrypted: list[bytes], x: np.ndarray, eta: int = 0) -> bytes:
    evaluator = node.evaluator
    return evaluator.total(evaluator.load(encrypted), evaluator.encode(x), eta)


# -- 1. correctness -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("eta", [0, 1, -1, 250, -1000, -20_000, 300_000])
def test_total_opens_to_count_plus_eta(holder: KeyHolder, evaluator: NodeEvaluator, view: _SecretKeyView,
                                       outcome: _Outcome, eta: int) -> None:
    # Prepare: a random factor over the same 20,000 residents (three blocks)
    x = np.random.default_rng(SEED + 2).integers(0, 2, RESIDENTS)
    encrypted = evaluator.load(outcome.encrypted)
    # Execute
    returned = evaluator.total(encrypted, evaluator.encode(x), eta)
    # Assert: the key holder opens count + eta (negative totals too), from one ciphertext at the last prime
    assert len(outcome.encrypted) == 3
    assert holder.open_total(returned) == int(x @ outcome.y) + eta
    assert view.load(returned).coeff_modulus_size() == 1
    assert holder.noise_budget(returned) > 0


def test_all_zero_factor_and_all_zero_block_open_correctly(holder: KeyHolder, evaluator: NodeEvaluator,
                                                            outcome: _Outcome) -> None:
    # Prepare: an all-zero factor, and a factor whose middle block is all zero (skipped by the node)
    zero = np.zeros(RESIDENTS, dtype=np.int64)
    gap = np.random.default_rng(SEED + 3).integers(0, 2, RESIDENTS)
    gap[N:2 * N] = 0
    encrypted = evaluator.load(outcome.encrypted)
    # Execute
    opened_zero = holder.open_total(evaluator.total(encrypted, evaluator.encode(zero), -7))
    opened_gap = holder.open_total(evaluator.total(encrypted, evaluator.encode(gap), 5))
    # Assert
    assert evaluator.encode(zero).blocks == [None, None, None]
    assert opened_zero == -7
    assert opened_gap == int(gap @ outcome.y) + 5


def test_pair_total_opens_to_triple_product_plus_eta(holder: KeyHolder, public: bytes, params: BfvParameters,
                                                     outcome: _Outcome) -> None:
    # Prepare: two computing nodes; A's factor has an all-zero first block (A sends a fresh Enc(0) for it)
    node_a, node_b = NodeEvaluator(public, params), NodeEvaluator(public, params)
    rng = np.random.default_rng(SEED + 4)
    xa, xb = rng.integers(0, 2, RESIDENTS), rng.integers(0, 2, RESIDENTS)
    xa[:N] = 0
    # Execute: A multiplies Enc(y) by its factor; B loads A's blocks with A's public bound and finishes
    blocks, bound = node_a.products(node_a.load(outcome.encrypted), node_a.encode(xa))
    returned = node_b.total(node_b.load(blocks, noise_bound=bound), node_b.encode(xb), -3)
    # Assert
    assert len(blocks) == 3
    assert holder.open_total(returned) == int((xa * xb) @ outcome.y) - 3
    assert holder.noise_budget(returned) > 0


def test_partner_total_of_a_nodes_own_encryption_opens_to_pair_count(holder: KeyHolder, public: bytes,
                                                                    params: BfvParameters) -> None:
    # Prepare: A encrypts its own factor under the key holder's public key (a pair count without y)
    node_a, node_b = NodeEvaluator(public, params), NodeEvaluator(public, params)
    rng = np.random.default_rng(SEED + 5)
    xa, xb = rng.integers(0, 2, RESIDENTS), rng.integers(0, 2, RESIDENTS)
    # Execute
    returned = node_b.total(node_b.load(node_a.encrypt(xa)), node_b.encode(xb), 11)
    # Assert
    assert holder.open_total(returned) == int(xa @ xb) + 11


def test_total_refuses_vectors_of_different_lengths(evaluator: NodeEvaluator, outcome: _Outcome) -> None:
    # Prepare: a factor one block short
    short = np.ones(N, dtype=np.int64)
    # Execute / Assert
    with pytest.raises(ValueError, match="different lengths"):
        evaluator.total(evaluator.load(outcome.encrypted), evaluator.encode(short), 0)


# -- 2. masking ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("density", [0.02, 0.9])
def test_masked_slots_are_uniform_and_uncorrelated_with_the_factor(holder: KeyHolder, evaluator: NodeEvaluator,
                                                                   outcome: _Outcome, density: float) -> None:
    # Prepare: a sparse or a dense factor, and the per-slot partial sums the node holds before masking.
    # 200 runs per density: smallest p-value 0.0017 (KS) / 0.0017 (chi²), largest |r|·√N 3.0
    x = (np.random.default_rng(SEED + 6).random(RESIDENTS) < density).astype(np.int64)
    partial = _partial_sums(x * outcome.y)
    # Execute: the key holder decrypts the returned ciphertext slot by slot
    slots = holder.slots(evaluator.total(evaluator.load(outcome.encrypted), evaluator.encode(x), -37))
    values = slots.astype(np.int64)
    # Assert: only the sum means something; one by one the slots are uniform mod t and unrelated to x
    assert int(values.sum()) % T == (int(x @ outcome.y) - 37) % T
    assert stats.kstest((values + 0.5) / T, "uniform").pvalue > ALPHA
    assert stats.chisquare(np.bincount(values * 64 // T, minlength=64)).pvalue > ALPHA
    assert abs(_correlation(values, partial)) < CORR_SIGMAS / math.sqrt(N)


def test_masked_slots_of_a_sparse_and_a_dense_factor_have_one_distribution(
        holder: KeyHolder, evaluator: NodeEvaluator, outcome: _Outcome) -> None:
    # Prepare: densities 0.02 and 0.9 (200 runs: smallest two-sample p-value 0.0037)
    rng = np.random.default_rng(SEED + 7)
    sparse = (rng.random(RESIDENTS) < 0.02).astype(np.int64)
    dense = (rng.random(RESIDENTS) < 0.9).astype(np.int64)
    encrypted = evaluator.load(outcome.encrypted)
    # Execute
    seen = [holder.slots(evaluator.total(encrypted, evaluator.encode(x), 0)).astype(np.int64) for x in (sparse, dense)]
    # Assert
    assert stats.ks_2samp(seen[0], seen[1]).pvalue > ALPHA


def test_slot_tests_reject_an_unmasked_product(holder: KeyHolder, public: bytes, params: BfvParameters,
                                               outcome: _Outcome, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: a node whose masks are all zero (power check for the two tests above)
    monkeypatch.setattr(bfv, "mask_slots", _unmasked)
    node = _node(public, params)
    x = (np.random.default_rng(SEED + 6).random(RESIDENTS) < 0.9).astype(np.int64)
    partial = _partial_sums(x * outcome.y)
    # Execute
    values = holder.slots(_returned(node, outcome.encrypted, x)).astype(np.int64)
    # Assert: the key holder reads every per-slot partial sum, and each statistic flags it
    assert np.array_equal(values, partial)
    assert stats.kstest((values + 0.5) / T, "uniform").pvalue < ALPHA
    assert stats.chisquare(np.bincount(values * 64 // T, minlength=64)).pvalue < ALPHA
    assert _correlation(values, partial) > 0.99


def test_mask_slots_sum_to_the_total_mod_t() -> None:
    # Prepare / Execute: masks for a positive, a zero and a negative total
    masks = {total: mask_slots(T, N, total) for total in (12_345, 0, -37)}
    # Assert
    for total, values in masks.items():
        assert values.shape == (N,) and int(values.max()) < T
        assert int(values.sum(dtype=np.uint64)) % T == total % T


def test_uniform_below_is_uniform_on_its_range() -> None:
    # Prepare / Execute: 100,000 draws below 10 (os.urandom, rejection sampling)
    draws = uniform_below(10, 100_000)
    # Assert
    assert int(draws.max()) < 10
    assert stats.chisquare(np.bincount(draws.astype(np.int64), minlength=10)).pvalue > ALPHA


# -- 3. flooding --------------------------------------------------------------------------------------------------

def test_without_flooding_the_key_holder_reads_the_factor_from_the_noise(
        holder: KeyHolder, public: bytes, params: BfvParameters, view: _SecretKeyView, one_block: _OneBlock) -> None:
    # Prepare: a node that re-randomises and masks but does not flood, read before its final modswitch. The key
    # holder predicts the noise for a guess x' as e_y·p_x' (80 keys: corr ≥ 0.99999 for the true x, |corr| ≤ 0.07
    # for the other two guesses; noise 2^23.7–2^23.8 times larger for x = y than for x = all ones)
    node = _node(public, params, flood=False, modswitch=False)
    # Execute
    returned = _returned(node, one_block.encrypted, one_block.x)
    noise = view.noise(returned)
    with_y = view.noise(_returned(node, one_block.encrypted, one_block.y))
    with_ones = view.noise(_returned(node, one_block.encrypted, np.ones(N, dtype=np.int64)))
    # Assert: the noise is the prediction for the true x; a guess with the same count, or one resident off, fails
    assert holder.open_total(returned) == int(one_block.x @ one_block.y)
    assert _correlation(noise, view.prediction(one_block.e_y, one_block.x)) > 0.99
    assert abs(_correlation(noise, view.prediction(one_block.e_y, one_block.same_count))) < 0.5
    assert abs(_correlation(noise, view.prediction(one_block.e_y, one_block.one_off))) < 0.5
    # it even reads x outright: p̂ = noise / e_y is x's plaintext polynomial, which decodes to x in every slot
    recovered = _divide_negacyclic(noise, one_block.e_y)
    assert np.array_equal(recovered, view.plain_polynomial(one_block.x))
    assert np.array_equal(view.decode(recovered), one_block.x)
    # factors of equal count (x = y and x = all ones, both |y|) leave noise of very different size
    assert np.std(with_y) / np.std(with_ones) > 2**10
    assert stats.ks_2samp(with_y, with_ones).pvalue < ALPHA


def test_flooded_noise_is_independent_of_the_factor(holder: KeyHolder, public: bytes, params: BfvParameters,
                                                    view: _SecretKeyView, one_block: _OneBlock) -> None:
    # Prepare: the node as it is, read where the flood is added (before the final modswitch, a deterministic
    # function of the flooded ciphertext). 110 keys: |corr|·√N ≤ 2.94; smallest p-values 0.005 (two-sample KS)
    # and 0.0008 (KS against uniform); std ratio within 1 ± 0.022
    node = _node(public, params, modswitch=False)
    # Execute
    returned = _returned(node, one_block.encrypted, one_block.x)
    noise = view.noise(returned)
    with_y = view.noise(_returned(node, one_block.encrypted, one_block.y))
    with_ones = view.noise(_returned(node, one_block.encrypted, np.ones(N, dtype=np.int64)))
    # Assert: still correct, and no guess (the true x included) predicts the noise any more
    assert holder.open_total(returned) == int(one_block.x @ one_block.y)
    for guess in (one_block.x, one_block.same_count, one_block.one_off):
        assert abs(_correlation(noise, view.prediction(one_block.e_y, guess))) < CORR_SIGMAS / math.sqrt(N)
    assert np.mean(_divide_negacyclic(noise, one_block.e_y) == view.plain_polynomial(one_block.x)) < 0.01
    # factors of equal count leave noise of one distribution: uniform in [-2^b, 2^b)
    assert stats.ks_2samp(with_y, with_ones).pvalue > ALPHA
    assert 0.9 < float(np.std(with_y) / np.std(with_ones)) < 1.1
    assert stats.kstest(noise / 2.0**node.flood_bits[0], "uniform", args=(-1, 2)).pvalue > ALPHA


def test_returned_ciphertext_noise_is_independent_of_the_factor(evaluator: NodeEvaluator, view: _SecretKeyView,
                                                                one_block: _OneBlock) -> None:
    # Prepare: the ciphertext exactly as the node returns it (flooded, switched to the last prime). Its noise is
    # rounding noise r0 + r1·s, whose correlation with a prediction spreads wider than 1/√N (unrelated guesses
    # reach |corr|·√N = 5.6 in 40 keys), so the true x's correlation is scaled by the spread over 63 random
    # guesses. 80 keys: scaled |corr| ≤ 2.8 (threshold 6: P(|t_62| > 6) ≈ 1e-7); two-sample KS p-values
    # uniform over 300 runs. No power check here: without the flood the modswitch leaves rounding noise too;
    # the flood itself is tested where it is added (the test above)
    node = _Node(evaluator, [])
    guesses = np.random.default_rng(SEED + 9).integers(0, 2, (63, N))
    # Execute
    noise = view.noise(_returned(node, one_block.encrypted, one_block.x))
    with_y = view.noise(_returned(node, one_block.encrypted, one_block.y))
    with_ones = view.noise(_returned(node, one_block.encrypted, np.ones(N, dtype=np.int64)))
    # Assert
    spread = np.std([_correlation(noise, view.prediction(one_block.e_y, guess)) for guess in guesses])
    assert abs(_correlation(noise, view.prediction(one_block.e_y, one_block.x))) < CORR_SIGMAS * spread
    assert stats.ks_2samp(with_y, with_ones).pvalue > ALPHA


def test_flood_covers_the_measured_noise_with_the_hiding_margin(public: bytes, params: BfvParameters,
                                                                view: _SecretKeyView, outcome: _Outcome) -> None:
    # Prepare: unflooded single and pair totals of random factors, read at the top level (40 keys: the flood
    # exceeds 2^λ·N·max|noise| by 14.1–14.7 bits for a single total and 21.1–21.4 bits for a pair)
    rng = np.random.default_rng(SEED + 10)
    xa, xb = rng.integers(0, 2, RESIDENTS), rng.integers(0, 2, RESIDENTS)
    single = _node(public, params, flood=False, modswitch=False)
    node_a, node_b = NodeEvaluator(public, params), _node(public, params, flood=False, modswitch=False)
    # Execute: the node's own flood exponent (public parameters only) against the noise the key holder measures
    single_noise = view.noise(_returned(single, outcome.encrypted, xb))
    blocks, bound = node_a.products(node_a.load(outcome.encrypted), node_a.encode(xa))
    evaluator_b = node_b.evaluator
    pair_noise = view.noise(evaluator_b.total(evaluator_b.load(blocks, noise_bound=bound), evaluator_b.encode(xb), 0))
    # Assert: N · max|noise| / 2^b ≤ 2^-λ, so the flooded noise is within 2^-(λ+1) of independent of x
    for measured, bits in ((single_noise, single.flood_bits[0]), (pair_noise, node_b.flood_bits[0])):
        assert math.log2(N * float(np.max(np.abs(measured)))) + params.hiding_bits <= bits


@pytest.mark.parametrize("degree, bits, limit", [(8192, 97, None), (16_384, 130, None), (8192, 100, 2)],
                         ids=["N=8192-44-bit-primes", "N=16384-49-bit-primes", "two-60-bit-primes"])
def test_flood_polynomial_is_one_uniform_integer_per_coefficient(degree: int, bits: int, limit: int | None) -> None:
    # Prepare: primes of 44, 49 and 60 bits: the residues are built from 16-, 14- and 3-bit pieces of the
    # random words (14 and 3 do not divide 64, so some pieces straddle two words)
    if limit is None:
        primes = [int(m.value()) for m in sealapi.CoeffModulus.BFVDefault(degree, sealapi.SEC_LEVEL_TYPE.TC128)][:-1]
    else:
        primes = [int(m.value()) for m in sealapi.CoeffModulus.Create(degree, [60] * limit)]
    modulus = math.prod(primes)
    # Execute
    residues = flood_polynomial(degree, bits, primes)
    # Assert: the residues are one integer per coefficient (CRT), in [-2^b, 2^b) and uniform there
    values = np.zeros(degree, dtype=object)
    for row, q in enumerate(primes):
        rest = modulus // q
        values = (values + residues[row].astype(object) * (rest * pow(rest, -1, q) % modulus)) % modulus
    centred = np.where(values > modulus // 2, values - modulus, values)
    assert residues.shape == (len(primes), degree)
    assert min(centred) >= -2**bits and max(centred) < 2**bits
    assert stats.kstest(np.array([float(v) for v in centred]) / 2.0**bits, "uniform", args=(-1, 2)).pvalue > ALPHA
    # the top bit is used: values reach beyond ±2^(b-1)
    assert max(abs(int(v)) for v in centred) > 2**(bits - 1)


# -- 4. re-randomisation ------------------------------------------------------------------------------------------

def test_without_rerandomisation_the_key_holder_confirms_a_guess_from_c1(
        holder: KeyHolder, public: bytes, params: BfvParameters, view: _SecretKeyView, outcome: _Outcome) -> None:
    # Prepare: a node that masks and floods but does not add a fresh Enc(0); a guess one resident off
    rng = np.random.default_rng(SEED + 8)
    x = rng.integers(0, 2, RESIDENTS)
    wrong = x.copy()
    wrong[0] ^= 1
    node = _node(public, params, rerandomise=False)
    # Execute
    returned = _returned(node, outcome.encrypted, x, 7)
    # Assert: the returned c1 is the key holder's recomputation for the true x, and for no other
    assert holder.open_total(returned) == int(x @ outcome.y) + 7
    assert np.array_equal(view.c1(returned), view.guess_c1(outcome.encrypted, x))
    assert np.mean(view.c1(returned) == view.guess_c1(outcome.encrypted, wrong)) < 0.01


def test_returned_c1_is_not_recomputable_from_enc_y_and_the_factor(
        holder: KeyHolder, evaluator: NodeEvaluator, view: _SecretKeyView, outcome: _Outcome) -> None:
    # Prepare
    x = np.random.default_rng(SEED + 8).integers(0, 2, RESIDENTS)
    # Execute
    returned = evaluator.total(evaluator.load(outcome.encrypted), evaluator.encode(x), 7)
    c1 = view.c1(returned)[0]
    # Assert: the true x's recomputation matches no more coefficients than chance; c1 is uniform mod q
    q = view.primes(view.last)[0]
    assert np.mean(c1 == view.guess_c1(outcome.encrypted, x)[0]) < 0.01
    assert stats.kstest((c1.astype(np.float64) + 0.5) / q, "uniform").pvalue > ALPHA


# -- 5. refusals --------------------------------------------------------------------------------------------------

def test_public_context_carries_the_public_key_only(public: bytes) -> None:
    # Execute
    context = ts.context_from(public, n_threads=1)
    # Assert
    assert context.is_public() and context.has_public_key()
    assert not context.has_secret_key()
    assert not context.has_relin_keys() and not context.has_galois_keys()


def test_evaluator_refuses_a_context_with_the_secret_key(params: BfvParameters) -> None:
    # Prepare: a context with the study's parameters, serialised with its secret key
    context = ts.context(ts.SCHEME_TYPE.BFV, poly_modulus_degree=N, plain_modulus=T, n_threads=1)
    private = context.serialize(save_secret_key=True)
    # Execute / Assert
    with pytest.raises(ValueError, match="secret key"):
        NodeEvaluator(private, params)


@pytest.mark.parametrize("make", [lambda: b"not a context",
                                  lambda: KeyHolder(BfvParameters(poly_modulus_degree=16_384)).public_context()],
                         ids=["unreadable", "other-parameters"])
def test_evaluator_refuses_an_unreadable_or_foreign_context(params: BfvParameters, make: Callable[[], bytes]) -> None:
    # Prepare
    context = make()
    # Execute / Assert
    with pytest.raises(ValueError):
        NodeEvaluator(context, params)


@pytest.mark.parametrize("change", [{"poly_modulus_degree": 4096}, {"plain_modulus": 786_431},
                                    {"plain_modulus": 16_385}, {"hiding_bits": 20}],
                         ids=["N=4096", "t-not-1-mod-2N", "t-composite", "hiding-bits"])
def test_parameters_refuse_settings_that_cannot_flood_or_batch(change: dict[str, int]) -> None:
    # Execute / Assert: 786431 is not 1 mod 2N; 16385 = 5·29·113 is 1 mod 2N but not prime
    with pytest.raises(ValueError):
        BfvParameters(**change)


def test_ciphertext_from_another_context_is_refused(holder: KeyHolder, evaluator: NodeEvaluator,
                                                    outcome: _Outcome) -> None:
    # Prepare: a block from a study with other parameters, garbage, and a returned (last-level) ciphertext
    foreign = KeyHolder(BfvParameters(poly_modulus_degree=16_384)).encrypt(np.ones(10, dtype=np.int64))
    returned = evaluator.total(evaluator.load(outcome.encrypted), evaluator.encode(outcome.y), 0)
    # Execute / Assert
    with pytest.raises(ValueError, match="does not belong"):
        evaluator.load(foreign)
    with pytest.raises(ValueError, match="does not belong"):
        holder.slots(foreign[0])
    with pytest.raises(ValueError, match="does not belong"):
        evaluator.load([bytes(100)])
    with pytest.raises(ValueError, match="first level"):
        evaluator.load([returned])


def test_another_key_holder_reads_nothing(params: BfvParameters, outcome: _Outcome) -> None:
    # Prepare: a second key holder with the same parameters (its ciphertexts load, SEAL cannot tell keys apart)
    stranger = KeyHolder(params)
    # Execute
    slots = stranger.slots(outcome.encrypted[0]).astype(np.int64)
    # Assert: no noise budget under the wrong key, and the slots are not y
    assert stranger.noise_budget(outcome.encrypted[0]) == 0
    assert np.mean(slots == outcome.y[:N]) < 0.01
