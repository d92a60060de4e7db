"""Probability densities of Section 3: the normal (eq. 8), the Laplace (eqs. 16–17, 55–56) and the Huber density
(eq. 11), the last one normalised so that it integrates to 1 (Figure 2).

Same conventions as :mod:`labkit.losses`: floats, NumPy arrays or torch tensors in, the same kind out.
"""
from __future__ import annotations

import math

import torch

from labkit import _inputs
from labkit._inputs import ArrayLike
from labkit.losses import _huber

__all__ = ["normal_pdf", "laplace_pdf", "huber_density", "huber_density_normaliser"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _normal_pdf(x, mu, sigma):
    z = (x - mu) / sigma
    return torch.exp(-0.5 * z * z) / (_SQRT_2PI * sigma)


def _laplace_pdf(x, mu, b):
    return torch.exp(-(x - mu).abs() / b) / (2.0 * b)


def _huber_density_normaliser(alpha):
    # Z(α) = ∫ exp(−H_α(x)) dx = √(2π)·erf(α/√2) (the quadratic middle) + (2/α)·exp(−α²/2) (the two linear tails)
    return _SQRT_2PI * torch.erf(alpha / math.sqrt(2.0)) + 2.0 / alpha * torch.exp(-0.5 * alpha * alpha)


def _huber_density(x, alpha):
    return torch.exp(-_huber(x, alpha)) / _huber_density_normaliser(alpha)


def normal_pdf(x: ArrayLike, mu: ArrayLike = 0.0, sigma: ArrayLike = 1.0) -> ArrayLike:
    """Normal density N(x; μ, σ²), eq. 8 (with y − F(x) → x − μ)."""
    _inputs.check_real("x", x)
    _inputs.check_real("mu", mu)
    _inputs.check_positive("sigma", sigma)
    return _inputs.apply(_normal_pdf, ("x", "mu", "sigma"), x, mu, sigma)


def laplace_pdf(x: ArrayLike, mu: ArrayLike = 0.0, b: ArrayLike = 1.0) -> ArrayLike:
    """Laplace density exp(−|x − μ|/b)/(2b), eqs. 16–17 and 55–56."""
    _inputs.check_real("x", x)
    _inputs.check_real("mu", mu)
    _inputs.check_positive("b", b)
    return _inputs.apply(_laplace_pdf, ("x", "mu", "b"), x, mu, b)


def huber_density_normaliser(alpha: ArrayLike) -> ArrayLike:
    """Z(α) = ∫ exp(−H_α(x)) dx = √(2π)·erf(α/√2) + (2/α)·exp(−α²/2), the constant that eq. 11's ∝ leaves out."""
    _inputs.check_positive("alpha", alpha)
    return _inputs.apply(_huber_density_normaliser, ("alpha",), alpha)


def huber_density(x: ArrayLike, alpha: ArrayLike) -> ArrayLike:
    """The Huber density exp(−H_α(x))/Z(α), eq. 11 normalised (integrates to 1 for every α > 0)."""
    _inputs.check_real("x", x)
    _inputs.check_positive("alpha", alpha)
    return _inputs.apply(_huber_density, ("x", "alpha"), x, alpha)
