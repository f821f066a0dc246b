"""Federated noisy Newton for logistic regression: what a node computes, and how the server steps.

Every round each node releases the sum of its residents' clipped log-loss gradients at the server's
parameters, with Gaussian noise (:mod:`federation.privacy`); in a few rounds
(:func:`federation.privacy.newton_hessian_rounds`) it also releases the upper triangle of its summed
curvature ``sum_rows (diag(p) - p p^T) (x) x x^T``, noised. The server adds the nodes' releases and takes a
damped Newton step on the summed log loss plus a ridge of :data:`RIDGE` (scikit-learn's default penalty):

    θ ← θ − (s (H̃₊ + E I) + RIDGE I)⁻¹ (g̃ + RIDGE θ)

where H̃₊ is the latest noisy curvature with negative eigenvalues set to 0, E is half the expected spectral
norm of its noise, and s rescales it to the current point: every round each node also releases the noisy
trace of its curvature (one number), and s is that trace over the trace when H̃ was released. The damping E: directions whose curvature is below the noise take short, safe
gradient steps instead of wild ones. The fixed point is where the noisy gradients vanish on average — the
(clipped) maximum-likelihood fit — however noisy the curvature; the curvature only sets how fast it gets
there. The released model is the mean of the last half of the iterates, which averages their gradient noise.

Why this and not more DP gradient-descent steps: at the defaults, DP-GD stopped far from the optimum (its
step size was not matched to the curvature, so it under-fits even without noise), and adding rounds costs a
network round trip each. Newton's steps are scale-free (no learning rate) and converge in a handful of
rounds; measured in ``benchmarks/README.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["MAX_LOGIT_STEP", "RIDGE", "NewtonSolver", "feature_columns", "from_upper_triangle", "upper_triangle"]

#: the ridge on the summed log loss: scikit-learn's ``LogisticRegression(C=1)``; keeps directions the data
#: cannot identify (a category and the intercept, say) from drifting on noise
RIDGE = 1.0
#: a trust region: no step moves any possible row's logit by more than this. Newton from zero can overshoot
#: where probabilities saturate (a rare class, curvature far below where the step started); ten rounds of
#: at most 4 still reach any logit a fitted model needs
MAX_LOGIT_STEP = 4.0


def upper_triangle(matrix: np.ndarray) -> np.ndarray:
    """A symmetric matrix as a vector with the same L2 norm as its Frobenius norm: the diagonal, and each
    entry above it times √2. So the matrix's Frobenius sensitivity is the vector's, and the noise a release
    adds to an off-diagonal entry is 1/√2 of that on the diagonal (as if the whole matrix were released and
    symmetrised, for half the numbers)."""
    rows, cols = np.triu_indices(len(matrix))
    return matrix[rows, cols] * np.where(rows == cols, 1.0, math.sqrt(2.0))


def from_upper_triangle(values: np.ndarray, dimension: int) -> np.ndarray:
    """The symmetric matrix :func:`upper_triangle` made ``values`` from."""
    rows, cols = np.triu_indices(dimension)
    out = np.zeros((dimension, dimension))
    out[rows, cols] = values / np.where(rows == cols, 1.0, math.sqrt(2.0))
    return out + np.triu(out, 1).T


def feature_columns(features: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
    """Encoded feature names (``age``, ``sex=Male``, ..., ``(intercept)``) grouped by the column they encode."""
    groups: dict[str, list[int]] = {}
    for index, name in enumerate(features):
        groups.setdefault(name.split("=", 1)[0], []).append(index)
    return tuple(tuple(group) for group in groups.values())


@dataclass
class NewtonSolver:
    """The server's side: the latest curvature, the iterates, and the estimate with its covariance."""

    #: the parameter shape: (classes - 1, features)
    shape: tuple[int, int]
    #: noise scales of one node's gradient and curvature releases
    gradient_noise: float
    hessian_noise: float
    #: the encoded features' columns, as groups of indices (a category's one-hot levels form one group): a
    #: step may change no row's logit by more than :data:`MAX_LOGIT_STEP` (see :meth:`step`)
    columns: tuple[tuple[int, ...], ...] = ()
    iterates: list[np.ndarray] = field(default_factory=list)
    curvature: np.ndarray | None = None
    damping: float = 0.0
    #: the curvature's eigen-decomposition (negative eigenvalues set to 0, damping added)
    _eigen: tuple[np.ndarray, np.ndarray] | None = None
    #: the noisy trace of the curvature when it was released, and the latest trace over it
    _reference_trace: float = 0.0
    scale: float = 1.0
    nodes: int = 0

    @property
    def dimension(self) -> int:
        return self.shape[0] * self.shape[1]

    def update_curvature(self, upper_sum: np.ndarray, nodes: int) -> None:
        """The summed noisy curvature of ``nodes`` nodes (upper triangles added)."""
        self.curvature = from_upper_triangle(upper_sum, self.dimension)
        # half the expected spectral norm of the summed noise: off-diagonal sd σ√(nodes/2), so 2·that·√d / 2
        self.damping = self.hessian_noise * math.sqrt(nodes / 2.0) * math.sqrt(self.dimension)
        values, vectors = np.linalg.eigh(self.curvature)
        self._eigen = (np.maximum(values, 0.0) + self.damping, vectors)
        self._reference_trace = 0.0

    def step(self, params: np.ndarray, gradient_sum: np.ndarray, nodes: int, trace_sum: float) -> np.ndarray:
        """One damped Newton step from ``params`` with the summed noisy gradient of ``nodes`` nodes.

        ``trace_sum``: the summed noisy trace of the nodes' curvature at ``params``. Between curvature releases
        the last curvature is rescaled by how much the trace has changed since: away from the start the
        curvature shrinks (probabilities move away from ½), most for rare outcomes, and unscaled steps would
        be many times too short."""
        if self._eigen is None:
            raise ValueError("a Newton step needs a curvature release first")
        if self._reference_trace <= 0.0:
            self._reference_trace = max(trace_sum, 1e-12)
        self.scale = float(np.clip(trace_sum / self._reference_trace, 0.02, 10.0))
        values, vectors = self._eigen
        gradient = gradient_sum.ravel() + RIDGE * params.ravel()
        change = -(vectors @ ((vectors.T @ gradient) / (self.scale * values + RIDGE))).reshape(self.shape)
        new = params.ravel() + change.ravel() * min(1.0, MAX_LOGIT_STEP / max(self.largest_logit_change(change), 1e-12))
        self.nodes = nodes
        self.iterates.append(new.reshape(self.shape))
        return self.iterates[-1]

    def largest_logit_change(self, change: np.ndarray) -> float:
        """The most a parameter change can move any row's logit, over every row the encoding allows (each
        column contributes its largest coefficient change: one level of a category, a number up to 1)."""
        columns = self.columns or tuple((j,) for j in range(self.shape[1]))
        return float(max(sum(np.abs(row[list(group)]).max() for group in columns) for row in change))

    @property
    def averaged(self) -> int:
        """How many of the last iterates the estimate averages: the last half."""
        return max(1, len(self.iterates) - len(self.iterates) // 2)

    def estimate(self) -> np.ndarray:
        """The mean of the last half of the iterates (their gradient noise averages out)."""
        return np.mean(self.iterates[-self.averaged:], axis=0)  # type: ignore[no-any-return]

    def covariance(self) -> tuple[np.ndarray, np.ndarray]:
        """Approximate covariances of :meth:`estimate`: sampling (the inverse curvature) and the DP noise.

        Near the optimum the iteration is θ_{t+1} − θ* = A (θ_t − θ*) − P⁻¹ ξ_t with P the damped curvature,
        A = I − P⁻¹ H and ξ_t the summed gradient noise (nodes · σ² I): a stationary vector autoregression. The
        covariance of the mean of its last ``m`` iterates is (1/m²) Σ_{s,t} A^{|s−t|} Σ (transposed for s < t),
        with Σ solving Σ = A Σ Aᵀ + P⁻¹ Q P⁻¹ (a discrete Lyapunov equation).
        """
        from scipy.linalg import solve_discrete_lyapunov

        assert self._eigen is not None and self.curvature is not None
        values, vectors = self._eigen
        values = self.scale * values + RIDGE
        curvature = (vectors * np.maximum(values - self.scale * self.damping, RIDGE)) @ vectors.T   # H̃₊ + ridge
        sampling = np.linalg.inv(curvature)
        p_inverse = (vectors / values) @ vectors.T
        a = np.eye(self.dimension) - p_inverse @ curvature
        q = self.nodes * self.gradient_noise ** 2 * p_inverse @ p_inverse.T
        stationary = solve_discrete_lyapunov(a, q)
        m = self.averaged
        total = m * stationary
        power = np.eye(self.dimension)
        for lag in range(1, m):
            power = power @ a
            lagged = power @ stationary
            total += (m - lag) * (lagged + lagged.T)
        return sampling, total / m**2
