"""The error distributions the M-estimation theory is evaluated under: names, parameters, density f, its derivative
f′, standard deviation and a sampler. All four are symmetric about 0, so the location M-estimate of every odd ψ is
consistent and f, f′ need only be evaluated at |x|.

======================  ====================================  ==========================================================
``noise``               parameters                            ε
======================  ====================================  ==========================================================
``"laplace"``           ``b``                                 Laplace(0, b), eqs. 16–17: the paper's label noise ε₁
``"gaussian"``          ``sigma``                             N(0, σ²), eq. 8
``"gaussian+laplace"``  ``sigma``, ``b``                      G + L, G ~ N(0, σ²) and L ~ Laplace(0, b) independent
``"contaminated"``      ``sigma``, ``eps``, ``outlier_scale``  (1 − ε)·N(0, σ²) + ε·N(0, s²) (Tukey 1960; Huber 1964)
======================  ====================================  ==========================================================

The density of G + L (the convolution) with a = σ/b is
f(x) = [A(x) + A(−x)]/(4b),  A(x) = exp(a²/2 − x/b)·erfc((a − x/σ)/√2),
evaluated through erfcx where the exponent would overflow; its derivative is f′(x) = [A(−x) − A(x)]/(4b²) (the
Gaussian terms d erfc/dx contribute cancel between A(x) and A(−x)).
"""
from __future__ import annotations

import math
import numbers

import numpy as np
from scipy import special

__all__ = ["NOISES", "check_noise", "pdf", "pdf_derivative", "density_at_zero", "noise_variance", "noise_std",
           "sample", "cuts"]

#: noise name → its parameters, in order
NOISES: dict[str, tuple[str, ...]] = {
    "laplace": ("b",),
    "gaussian": ("sigma",),
    "gaussian+laplace": ("sigma", "b"),
    "contaminated": ("sigma", "eps", "outlier_scale"),
}
_SQRT2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def check_noise(noise: str, params: dict) -> dict[str, float]:
    """Validate ``noise`` and its parameters; return them as floats. ``ValueError`` names what is wrong."""
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {tuple(NOISES)}, got noise={noise!r}")
    expected = NOISES[noise]
    missing = [k for k in expected if k not in params]
    extra = [k for k in params if k not in expected]
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(extra)}"] if extra else [])
        hint = " (β of D_{α,β} only scales ψ and cancels from the variance: leave it out)" if "beta" in extra else ""
        raise ValueError(f"noise={noise!r} takes parameters {expected}: {'; '.join(parts)}{hint}")
    out = {}
    for key in expected:
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            raise ValueError(f"{key} must be a finite real number, got {key}={value!r}")
        value = float(value)
        if key == "eps":
            if not 0.0 <= value < 1.0:
                raise ValueError(f"eps (the outlier fraction) must be in [0, 1), got eps={value!r}")
        elif value <= 0.0:
            raise ValueError(f"{key} (a scale) must be > 0, got {key}={value!r}")
        out[key] = value
    return out


def _normal(x: np.ndarray, s: float) -> np.ndarray:
    return np.exp(-0.5 * (x / s) ** 2) / (_SQRT_2PI * s)


def _a_terms(x: np.ndarray, sigma: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """(A(x), A(−x)) for x ≥ 0, A(x) = exp(a²/2 − x/b)·erfc((a − x/σ)/√2), a = σ/b, without overflow."""
    a = sigma / b
    gauss = np.exp(-0.5 * (x / sigma) ** 2)
    minus = special.erfcx((a + x / sigma) / _SQRT2) * gauss  # A(−x): its erfc argument is > 0
    z = (a - x / sigma) / _SQRT2
    with np.errstate(over="ignore", invalid="ignore"):  # each branch is finite where np.where takes it
        plus = np.where(z >= 0, special.erfcx(np.maximum(z, 0.0)) * gauss,
                        np.exp(0.5 * a * a - x / b) * special.erfc(np.minimum(z, 0.0)))
    return plus, minus


def pdf(noise: str, x, p: dict[str, float]) -> np.ndarray:
    """f(x) for validated parameters ``p`` (see :func:`check_noise`)."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    if noise == "laplace":
        return np.exp(-x / p["b"]) / (2.0 * p["b"])
    if noise == "gaussian":
        return _normal(x, p["sigma"])
    if noise == "contaminated":
        return (1.0 - p["eps"]) * _normal(x, p["sigma"]) + p["eps"] * _normal(x, p["outlier_scale"])
    plus, minus = _a_terms(x, p["sigma"], p["b"])
    return (plus + minus) / (4.0 * p["b"])


def pdf_derivative(noise: str, x, p: dict[str, float]) -> np.ndarray:
    """f′(x) for x ≥ 0 (f′ is odd; at x = 0 the right derivative, −f(0)/b for the Laplace)."""
    x = np.asarray(x, dtype=np.float64)
    if np.any(x < 0):
        raise ValueError("pdf_derivative is evaluated on x >= 0 only (f' is odd)")
    if noise == "laplace":
        return -pdf(noise, x, p) / p["b"]
    if noise == "gaussian":
        return -x / p["sigma"] ** 2 * _normal(x, p["sigma"])
    if noise == "contaminated":
        s1, s2 = p["sigma"], p["outlier_scale"]
        return -x * ((1.0 - p["eps"]) * _normal(x, s1) / s1**2 + p["eps"] * _normal(x, s2) / s2**2)
    plus, minus = _a_terms(x, p["sigma"], p["b"])
    return (minus - plus) / (4.0 * p["b"] ** 2)


def density_at_zero(noise: str, p: dict[str, float]) -> float:
    """f(0) in closed form (for G + L: erfcx(a/√2)/(2b), a = σ/b)."""
    if noise == "gaussian+laplace":
        return float(special.erfcx(p["sigma"] / p["b"] / _SQRT2) / (2.0 * p["b"]))
    return float(pdf(noise, 0.0, p))


def noise_variance(noise: str, p: dict[str, float]) -> float:
    """Var(ε) = E[ε²]: 2b², σ², σ² + 2b², (1 − ε)σ² + ε·s²."""
    if noise == "laplace":
        return 2.0 * p["b"] ** 2
    if noise == "gaussian":
        return p["sigma"] ** 2
    if noise == "gaussian+laplace":
        return p["sigma"] ** 2 + 2.0 * p["b"] ** 2
    return (1.0 - p["eps"]) * p["sigma"] ** 2 + p["eps"] * p["outlier_scale"] ** 2


def noise_std(noise: str, p: dict[str, float]) -> float:
    """The standard deviation √Var(ε), the unit of the default α search range."""
    return math.sqrt(noise_variance(noise, p))


def cuts(noise: str, p: dict[str, float]) -> list[float]:
    """Points on [0, ∞) where the integrands change scale (multiples of each component's scale): quadrature splits
    there so that no narrow peak or wide tail is missed."""
    scales = [p[k] for k in ("b", "sigma", "outlier_scale") if k in p]
    return sorted({m * s for s in scales for m in (0.5, 2.0, 8.0, 32.0)})


def sample(noise: str, p: dict[str, float], size, rng: np.random.Generator) -> np.ndarray:
    """Draw ε of shape ``size``."""
    if noise == "laplace":
        return rng.laplace(0.0, p["b"], size)
    if noise == "gaussian":
        return rng.normal(0.0, p["sigma"], size)
    if noise == "gaussian+laplace":
        return rng.normal(0.0, p["sigma"], size) + rng.laplace(0.0, p["b"], size)
    outlier = rng.random(size) < p["eps"]
    return rng.normal(0.0, 1.0, size) * np.where(outlier, p["outlier_scale"], p["sigma"])
