"""The only place in Tillit that draws privacy noise: OpenDP's Gaussian mechanism."""

from __future__ import annotations

import numpy as np

from federation.privacy._accounting import gaussian_measurement

__all__ = ["gaussian_release"]


def gaussian_release(values: np.ndarray, scale: float) -> np.ndarray:
    """``values`` plus N(0, scale²) noise per coordinate, sampled by OpenDP (exact sampling, not numpy's float generator)."""
    flat = np.asarray(values, dtype=float).ravel()
    if not np.isfinite(flat).all():
        raise ValueError("refusing to release non-finite values")
    noisy = gaussian_measurement(len(flat), float(scale))(flat.tolist())
    return np.asarray(noisy, dtype=float).reshape(np.shape(values))
