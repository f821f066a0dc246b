"""The only place in Tillit that draws privacy noise: OpenDP's Gaussian mechanism."""

from __future__ import annotations

import numpy as np

from federation.privacy._accounting import gaussian_measurement, integer_gaussian_measurement

__all__ = ["gaussian_release", "integer_noise"]


def gaussian_release(values: np.ndarray, scale: float) -> np.ndarray:
    """``values`` plus N(0, scale²) noise per coordinate, sampled by OpenDP (exact sampling, not numpy's float generator)."""
    flat = np.asarray(values, dtype=float).ravel()
    if not np.isfinite(flat).all():
        raise ValueError("refusing to release non-finite values")
    noisy = gaussian_measurement(len(flat), float(scale))(flat.tolist())
    return np.asarray(noisy, dtype=float).reshape(np.shape(values))


def integer_noise(size: int, scale: float) -> np.ndarray:
    """``size`` draws of discrete Gaussian noise of this scale, by OpenDP — for counts released under
    encryption, where the noise is added modulo the plaintext modulus and must be a whole number."""
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(integer_gaussian_measurement(size, float(scale))([0] * size), dtype=np.int64)
