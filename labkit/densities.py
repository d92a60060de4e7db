"""Probability densities of Section 3: the normal (eq. 8), the Laplace (eqs. 16–17, 55–56) and the Huber density
(eq. 11), the last one normalised so that it integrates to 1 (Figure 2); and the densities implied by Huber's
relatives (:mod:`labkit.relatives`) where they exist: pseudo-Huber, Cauchy, Barron's family for α ≥ 0, Balanced L1.

Same conventions as :mod:`labkit.losses`: floats, NumPy arrays or torch tensors in, the same kind out.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch

from labkit import _inputs
from labkit import relatives as _relatives
from labkit._inputs import ArrayLike
from labkit.losses import _huber

__all__ = ["normal_pdf", "laplace_pdf", "huber_density", "huber_density_normaliser", "pseudo_huber_density",
           "cauchy_density", "barron_density", "balanced_l1_density"]

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


# ---------------------------------------------------------------------------------------------------------------
# Huber's relatives (labkit.relatives): the densities they are the negative log-likelihoods of, where one exists
# ---------------------------------------------------------------------------------------------------------------
# Like huber_density (exp(−H_α)/Z, eq. 11), each named loss ρ gives exp(−ρ)/Z when ∫exp(−ρ) is finite. The bounded
# losses (Geman–McClure, Welsch, Barron's α < 0) give none: exp(−ρ) tends to a positive constant, so its integral
# over ℝ diverges. The normalisers with no closed form come from scipy's adaptive quadrature.
def _pseudo_huber_density(x, scale):
    # exp(−c²(√(1 + x²/c²) − 1)) = e^{c²}·exp(−c√(c² + x²)), and ∫exp(−c√(c² + x²)) dx = 2c·K₁(c²): the symmetric
    # hyperbolic distribution, Z = 2c·e^{c²}K₁(c²) (the scaled Bessel function keeps it finite for large c)
    return torch.exp(-_relatives._pseudo_huber(x, scale)) / (
        2 * scale * torch.special.scaled_modified_bessel_k1(scale * scale))


def _cauchy_density(x, scale):
    # (1 + x²/(2c²))^{−c²} is Student's t with ν = 2c² − 1 degrees of freedom and scale c·√(2/ν);
    # Z = √2·c·B(½, c² − ½) = √(2π)·c·Γ(c² − ½)/Γ(c²), in float64 (the two log-gammas cancel for large c)
    c2 = scale.double() ** 2
    log_z = 0.5 * math.log(2 * math.pi) + 0.5 * torch.log(c2) + torch.lgamma(c2 - 0.5) - torch.lgamma(c2)
    return torch.exp(-_relatives._cauchy(x, scale) - log_z.to(x.dtype))


def _barron_density(x, alpha, scale, log_z):
    return torch.exp(-_relatives._barron(x, alpha, scale) - log_z) / scale


def _balanced_l1_density(x, alpha, gamma, beta, log_z):
    return torch.exp(-_relatives._balanced_l1(x, alpha, gamma, beta) - log_z)


def _check_above(name: str, value: ArrayLike, bound: float, why: str) -> None:
    low = (value <= bound).any() if isinstance(value, torch.Tensor) else np.any(np.asarray(value) <= bound)
    if bool(low):
        raise ValueError(f"{name} must be > {bound:.6g} everywhere, got {name}={value!r}: {why}")


def _scalar(name: str, value: Any) -> float:
    _inputs.check_real(name, value)
    shape = tuple(value.shape) if isinstance(value, torch.Tensor) else np.shape(value)
    if math.prod(shape) != 1:
        raise TypeError(f"{name} must be a single real number (its normaliser is computed by quadrature), got "
                        f"shape {shape}")
    return float(value.reshape(()) if isinstance(value, (torch.Tensor, np.ndarray)) else np.reshape(value, ()))


@functools.lru_cache(maxsize=256)
def _barron_log_partition(alpha: float) -> float:
    # log Z(α), Z(α) = ∫exp(−ρ(x, α, 1)) dx = 2∫₀^∞; split at 1 (the bowl) so the tail's substitution sees only it
    from scipy import integrate  # here, not at the top: importing labkit.densities stays free of SciPy

    def integrand(t):
        return math.exp(-_relatives.barron_loss(t, alpha, 1.0))

    head = integrate.quad(integrand, 0.0, 1.0, epsabs=0.0, epsrel=1e-13)[0]
    tail = integrate.quad(integrand, 1.0, math.inf, epsabs=0.0, epsrel=1e-13, limit=200)[0]
    return math.log(2.0 * (head + tail))


@functools.lru_cache(maxsize=256)
def _balanced_l1_log_partition(alpha: float, gamma: float, beta: float) -> float:
    # Z = 2(∫₀^β exp(−L_b) dx + ∫_β^∞ exp(−(γx + γ/b − αβ)) dx); the linear tail integrates in closed form
    from scipy import integrate

    inner = integrate.quad(lambda t: math.exp(-_relatives.balanced_l1_loss(t, alpha, gamma, beta)), 0.0, beta,
                           epsabs=0.0, epsrel=1e-13)[0]
    b = math.expm1(gamma / alpha)
    return math.log(2.0 * (inner + math.exp(-(gamma * beta + gamma / b - alpha * beta)) / gamma))


def pseudo_huber_density(x: ArrayLike, scale: ArrayLike) -> ArrayLike:
    """exp(−ρ(x))/Z for the pseudo-Huber loss ρ = c²(√(1 + (x/c)²) − 1) (:func:`labkit.relatives.pseudo_huber`):
    the symmetric hyperbolic distribution (Barndorff-Nielsen 1977), Z = 2c·e^{c²}K₁(c²). Normal-like in the middle,
    Laplace-like tails with rate c: the smooth analogue of the Huber density (eq. 11). Every c > 0."""
    _inputs.check_real("x", x)
    _inputs.check_positive("scale", scale)
    return _inputs.apply(_pseudo_huber_density, ("x", "scale"), x, scale)


def cauchy_density(x: ArrayLike, scale: ArrayLike) -> ArrayLike:
    """exp(−ρ(x))/Z for the Cauchy loss ρ = c²·log(1 + ½(x/c)²) (:func:`labkit.relatives.cauchy_loss`): Student's t
    with ν = 2c² − 1 degrees of freedom and scale c·√(2/ν) (the Cauchy distribution at c = 1). It exists only for
    c > 1/√2: below, exp(−ρ) = (1 + ½(x/c)²)^{−c²} decays like |x|^{−2c²}, too slowly to integrate."""
    _inputs.check_real("x", x)
    _inputs.check_positive("scale", scale)
    _check_above("scale", scale, math.sqrt(0.5), "below 1/√2 the Cauchy loss's exp(−ρ) has infinite integral")
    return _inputs.apply(_cauchy_density, ("x", "scale"), x, scale)


def barron_density(x: ArrayLike, alpha: float, scale: ArrayLike = 1.0) -> ArrayLike:
    """Barron's distribution p(x | 0, α, c) = exp(−ρ(x, α, c))/(c·Z(α)), Z(α) = ∫exp(−ρ(x, α, 1)) dx (Barron 2019,
    the distribution built on eq. 1; ρ is :func:`labkit.relatives.barron_loss`), for a single shape ``alpha`` ≥ 0.

    α = 2 is the normal N(0, c²), α = 0 the Cauchy distribution with scale √2·c, α = 1 the hyperbolic one. Z(α) has
    no closed form in general: it is computed by quadrature (once per α). For α < 0 (Geman–McClure, Welsch) there is
    no density: ρ is bounded by |α − 2|/|α|, so exp(−ρ) never falls below a positive constant; that raises
    ``ValueError``, as Barron's adaptive loss also restricts α ≥ 0 when it is read as a likelihood.
    """
    _inputs.check_real("x", x)
    _inputs.check_positive("scale", scale)
    a = _scalar("alpha", alpha)
    if not a >= 0:
        raise ValueError(f"alpha must be >= 0, got alpha={alpha!r}: for α < 0 the loss is bounded, exp(−ρ) tends "
                         "to a positive constant and has no finite integral over ℝ (no density)")
    return _inputs.apply(_barron_density, ("x", "alpha", "scale", "log_z"), x, a, scale, _barron_log_partition(a))


def balanced_l1_density(x: ArrayLike, alpha: float = 0.5, gamma: float = 1.5, beta: float = 1.0) -> ArrayLike:
    """exp(−L_b(x))/Z for the Balanced L1 loss (:func:`labkit.relatives.balanced_l1_loss`, single α, γ, β > 0):
    finite because the tail is linear (Laplace-like with rate γ); Z by quadrature over [0, β] plus the tail's closed
    form. Libra R-CNN motivates L_b by balancing gradients, not as a likelihood; this is what it implies if read as
    one."""
    _inputs.check_real("x", x)
    params = [_scalar(n, v) for n, v in (("alpha", alpha), ("gamma", gamma), ("beta", beta))]
    for name, value in zip(("alpha", "gamma", "beta"), params):
        _inputs.check_positive(name, value)
    return _inputs.apply(_balanced_l1_density, ("x", "alpha", "gamma", "beta", "log_z"), x, *params,
                         _balanced_l1_log_partition(*params))
