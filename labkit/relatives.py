"""Huber's relatives: the robust losses a learner meets next to H_α, each one formula in one function, with its
influence function ψ = ρ′ (the ``*_grad`` functions).

=======================================  ==========================================================================
loss (source)                            here
=======================================  ==========================================================================
Barron's general ρ(x, α, c)              :func:`barron_loss` ``(x, alpha, scale)``: α the shape, c the scale
(J. T. Barron, *A General and Adaptive   (α = 2: L2, 1: Charbonnier, 0: Cauchy, −2: Geman–McClure, −∞: Welsch)
Robust Loss Function*, CVPR 2019)
pseudo-Huber / Charbonnier               :func:`pseudo_huber` ``(x, scale)`` = c²·ρ(x, 1, c)
Cauchy / Lorentzian                      :func:`cauchy_loss` ``(x, scale)`` = c²·ρ(x, 0, c)
Geman–McClure                            :func:`geman_mcclure_loss` ``(x, scale)`` = c²·ρ(x, −2, c)
Welsch / Leclerc                         :func:`welsch_loss` ``(x, scale)`` = c²·ρ(x, −∞, c)
Balanced L1 (J. Pang et al.,             :func:`balanced_l1_loss` ``(x, alpha, gamma, beta)``: α, γ, β of the
*Libra R-CNN*, CVPR 2019, Section 3.3)   paper and of mmdetection's ``BalancedL1Loss``
=======================================  ==========================================================================

The four named members of Barron's family are scaled by c² so that, like H_α (eq. 5) and D_{α,1/α} (eq. 20), each is
½x² + O(x⁴) at 0 and ψ(x) ≈ x there: c plays the part of H_α's α (pseudo-Huber's tail slope is exactly c), and the
curves can share one slider (notebook 09). Barron's own ρ(x, α, c) has curvature 1/c² at 0 instead. Classical
write-ups use other scales: Black & Anandan's Cauchy (c̃²/2)·log(1 + (x/c̃)²) and Dennis & Welsch's
(c̃²/2)·(1 − exp(−(x/c̃)²)) are ours with c̃ = √2·c.

Same conventions as :mod:`labkit.losses` (through :mod:`labkit._inputs`): floats, NumPy arrays or torch tensors in
(parameters broadcast against ``x``), the same kind out; torch paths are differentiable. Implied densities, where
they exist, are in :mod:`labkit.densities`.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from labkit import _inputs
from labkit._inputs import ArrayLike
from labkit.losses import huber, huber_grad, laplace_kl_loss, laplace_kl_loss_grad

__all__ = [
    "barron_loss",
    "barron_loss_grad",
    "pseudo_huber",
    "pseudo_huber_grad",
    "cauchy_loss",
    "cauchy_loss_grad",
    "geman_mcclure_loss",
    "geman_mcclure_loss_grad",
    "welsch_loss",
    "welsch_loss_grad",
    "balanced_l1_loss",
    "balanced_l1_loss_grad",
    "cauchy_kl_divergence",
    "SAME_CURVATURE",
    "family",
]


# ---------------------------------------------------------------------------------------------------------------
# torch kernels (tensors in, tensors out; inputs already validated)
# ---------------------------------------------------------------------------------------------------------------
def _barron_parts(x, alpha, scale):
    """(z, the four special-value masks, a safe α): z = (x/c)²; the general form is evaluated on α = 1 wherever α
    is one of 2, 0, ±∞, so the branch ``torch.where`` discards sends back neither NaN nor inf (the "double where")."""
    z = (x / scale) ** 2
    two, zero, neg_inf, pos_inf = alpha == 2, alpha == 0, alpha == -math.inf, alpha == math.inf
    safe = torch.where(two | zero | neg_inf | pos_inf, 1.0, alpha)
    return z, (two, zero, neg_inf, pos_inf), safe


def _barron(x, alpha, scale):
    z, (two, zero, neg_inf, pos_inf), a = _barron_parts(x, alpha, scale)
    b = (a - 2).abs()
    # (b/a)·((z/b + 1)^{a/2} − 1) as expm1 of a log1p: no cancellation for small z, none as α → 0 (expm1(t)/a keeps
    # its digits for tiny t) and none as α → 2 (z/b is large, the power is far from 1); only α = 0, 2 exactly divide
    # by zero, and those are the named branches
    general = b / a * torch.expm1(0.5 * a * torch.log1p(z / b))
    loss_two = 0.5 * z
    loss_zero = torch.log1p(0.5 * z)
    loss_neg_inf = -torch.expm1(-0.5 * z)
    loss_pos_inf = torch.expm1(0.5 * torch.where(pos_inf, z, 0.0))  # overflows where α < ∞: keep inf out of backward
    return torch.where(two, loss_two, torch.where(zero, loss_zero, torch.where(
        neg_inf, loss_neg_inf, torch.where(pos_inf, loss_pos_inf, general))))


def _barron_grad(x, alpha, scale):
    z, (two, zero, neg_inf, pos_inf), a = _barron_parts(x, alpha, scale)
    b = (a - 2).abs()
    # ∂ρ/∂x = (x/c²)·(z/b + 1)^{α/2 − 1}; the power as exp of a log1p (→ 1 as α → 2, where (α/2 − 1) = ∓b/2)
    power = torch.where(two, 1.0, torch.where(zero, 1 / (1 + 0.5 * z), torch.where(
        neg_inf, torch.exp(-0.5 * z), torch.where(pos_inf, torch.exp(0.5 * torch.where(pos_inf, z, 0.0)),
                                                  torch.exp((0.5 * a - 1) * torch.log1p(z / b))))))
    return x / scale ** 2 * power


def _pseudo_huber(x, scale):
    # c²(√(1 + (x/c)²) − 1) = x²/(√(1 + (x/c)²) + 1): the second form does not cancel for |x| ≪ c
    return x * x / (torch.hypot(torch.ones_like(x), x / scale) + 1)


def _pseudo_huber_grad(x, scale):
    return x / torch.hypot(torch.ones_like(x), x / scale)


def _cauchy(x, scale):
    return scale ** 2 * torch.log1p(0.5 * (x / scale) ** 2)


def _cauchy_grad(x, scale):
    return x / (1 + 0.5 * (x / scale) ** 2)


def _geman_mcclure(x, scale):
    return 2 * x * x / ((x / scale) ** 2 + 4)


def _geman_mcclure_grad(x, scale):
    return 16 * x / ((x / scale) ** 2 + 4) ** 2


def _welsch(x, scale):
    return -scale ** 2 * torch.expm1(-0.5 * (x / scale) ** 2)


def _welsch_grad(x, scale):
    return x * torch.exp(-0.5 * (x / scale) ** 2)


def _cauchy_kl(mu1, s1, mu2, s2):
    # log(((s₁ + s₂)² + d²)/(4s₁s₂)) = log1p(((s₁ − s₂)² + d²)/(4s₁s₂)): both terms ≥ 0, so KL(p‖p) is exactly 0
    return torch.log1p(((s1 - s2) ** 2 + (mu1 - mu2) ** 2) / (4 * s1 * s2))


def _balanced_l1(x, alpha, gamma, beta):
    ax, b = x.abs(), torch.expm1(gamma / alpha)  # b = e^{γ/α} − 1, so that α·ln(b + 1) = γ
    inner = alpha / b * (b * ax + 1) * torch.log1p(b * ax / beta) - alpha * ax
    return torch.where(ax < beta, inner, gamma * ax + gamma / b - alpha * beta)


def _balanced_l1_grad(x, alpha, gamma, beta):
    ax, b = x.abs(), torch.expm1(gamma / alpha)
    inner = alpha * torch.log1p(b * ax / beta) + alpha * (1 - beta) / (b * ax + beta)
    return torch.sign(x) * torch.where(ax < beta, inner, gamma)


# ---------------------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------------------
def _scaled(kernel, x: ArrayLike, scale: ArrayLike) -> ArrayLike:
    _inputs.check_real("x", x)
    _inputs.check_positive("scale", scale)
    return _inputs.apply(kernel, ("x", "scale"), x, scale)


def _barron_call(kernel, x: ArrayLike, alpha: ArrayLike, scale: ArrayLike) -> ArrayLike:
    _inputs.check_real("x", x)
    _inputs.check_real("alpha", alpha)
    _inputs.check_positive("scale", scale)
    return _inputs.apply(kernel, ("x", "alpha", "scale"), x, alpha, scale)


def barron_loss(x: ArrayLike, alpha: ArrayLike, scale: ArrayLike) -> ArrayLike:
    """Barron's general robust loss ρ(x, α, c) = (|α − 2|/α)·(((x/c)²/|α − 2| + 1)^{α/2} − 1) (Barron 2019,
    eq. 1, with its limits as α → 0, 2, ±∞).

    ``x``: the residual; ``alpha``: the shape α ∈ [−∞, ∞] (smaller is more robust); ``scale``: c > 0, the width of
    the quadratic bowl around 0 (ρ ≈ ½(x/c)² for |x| ≪ c). Special cases, each its limit:

    - α = 2: ½(x/c)², L2 (the paper's L₂ of Section 3.1 in units of c);
    - α = 1: √((x/c)² + 1) − 1, Charbonnier / pseudo-Huber (:func:`pseudo_huber` is c² times it);
    - α = 0: log(½(x/c)² + 1), Cauchy / Lorentzian (:func:`cauchy_loss`);
    - α = −2: 2(x/c)²/((x/c)² + 4), Geman–McClure (:func:`geman_mcclure_loss`);
    - α = −∞: 1 − exp(−½(x/c)²), Welsch / Leclerc (:func:`welsch_loss`); α = +∞: exp(½(x/c)²) − 1.

    Numerically safe near α = 0 and α = 2: the general form is written with ``expm1``/``log1p``, continuous into the
    exact special cases (no clamping of |α − 2| as robust_loss_pytorch does). Gradients w.r.t. ``alpha`` are those of
    the general form; at the four special values they are 0.
    """
    return _barron_call(_barron, x, alpha, scale)


def barron_loss_grad(x: ArrayLike, alpha: ArrayLike, scale: ArrayLike) -> ArrayLike:
    """ψ(x) = ∂ρ(x, α, c)/∂x = (x/c²)·((x/c)²/|α − 2| + 1)^{α/2 − 1} (Barron 2019), with the same limits: x/c² at
    α = 2, x/(c² + ½x²) at 0, (x/c²)·exp(−½(x/c)²) at −∞. Bounded for α ≤ 1, redescending (→ 0) for α < 1."""
    return _barron_call(_barron_grad, x, alpha, scale)


def pseudo_huber(x: ArrayLike, scale: ArrayLike) -> ArrayLike:
    """Pseudo-Huber / Charbonnier loss c²(√(1 + (x/c)²) − 1) = c²·ρ(x, 1, c) (Charbonnier et al., ICIP 1994;
    Hartley & Zisserman's pseudo-Huber; Barron's α = 1).

    ``scale``: c > 0, in the role of H_α's α: ½x² for |x| ≪ c, c|x| − c² for |x| ≫ c; smooth everywhere, unlike
    H_α (eq. 5), whose second derivative jumps at |x| = α. Evaluated as x²/(√(1 + (x/c)²) + 1) (no cancellation).
    """
    return _scaled(_pseudo_huber, x, scale)


def pseudo_huber_grad(x: ArrayLike, scale: ArrayLike) -> ArrayLike:
    """ψ(x) = x/√(1 + (x/c)²): x near 0, tending to ±c (H_α's clip at ±α, made smooth)."""
    return _scaled(_pseudo_huber_grad, x, scale)


def cauchy_loss(x: ArrayLike, scale: ArrayLike) -> ArrayLike:
    """Cauchy / Lorentzian loss c²·log(1 + ½(x/c)²) = c²·ρ(x, 0, c) (Black & Anandan, CVIU 1996; Barron's α = 0).

    ``scale``: c > 0. Grows only logarithmically: the negative log-likelihood of a Student-t (a Cauchy density when
    c = 1; :func:`labkit.densities.cauchy_density`).
    """
    return _scaled(_cauchy, x, scale)


def cauchy_loss_grad(x: ArrayLike, scale: ArrayLike) -> ArrayLike:
    """ψ(x) = x/(1 + ½(x/c)²): largest (c/√2) at |x| = √2·c, then back to 0 like 2c²/x (redescending)."""
    return _scaled(_cauchy_grad, x, scale)


def geman_mcclure_loss(x: ArrayLike, scale: ArrayLike) -> ArrayLike:
    """Geman–McClure loss 2x²/((x/c)² + 4) = c²·ρ(x, −2, c) (Geman & McClure 1987; Barron's α = −2).

    ``scale``: c > 0. Bounded by 2c²: an outlier costs at most a constant, so exp(−ρ) is no density on ℝ.
    """
    return _scaled(_geman_mcclure, x, scale)


def geman_mcclure_loss_grad(x: ArrayLike, scale: ArrayLike) -> ArrayLike:
    """ψ(x) = 16x/((x/c)² + 4)²: x near 0, largest at |x| = 2c/√3, falling like 16c⁴/x³."""
    return _scaled(_geman_mcclure_grad, x, scale)


def welsch_loss(x: ArrayLike, scale: ArrayLike) -> ArrayLike:
    """Welsch / Leclerc loss c²(1 − exp(−½(x/c)²)) = c²·ρ(x, −∞, c) (Dennis & Welsch 1978; Barron's α → −∞).

    ``scale``: c > 0. Bounded by c²; no density on ℝ. Written with ``expm1`` (no cancellation for |x| ≪ c).
    """
    return _scaled(_welsch, x, scale)


def welsch_loss_grad(x: ArrayLike, scale: ArrayLike) -> ArrayLike:
    """ψ(x) = x·exp(−½(x/c)²): x near 0, largest at |x| = c, vanishing like a Gaussian (hardest redescent)."""
    return _scaled(_welsch_grad, x, scale)


def _balanced_call(kernel, x, alpha, gamma, beta):
    _inputs.check_real("x", x)
    for name, value in (("alpha", alpha), ("gamma", gamma), ("beta", beta)):
        _inputs.check_positive(name, value)
    return _inputs.apply(kernel, ("x", "alpha", "gamma", "beta"), x, alpha, gamma, beta)


def balanced_l1_loss(x: ArrayLike, alpha: ArrayLike = 0.5, gamma: ArrayLike = 1.5,
                     beta: ArrayLike = 1.0) -> ArrayLike:
    """Balanced L1 loss of Libra R-CNN (Pang et al., CVPR 2019, Section 3.3), as mmdetection computes it
    (``mmdet/models/losses/balanced_l1_loss.py``), with b = e^{γ/α} − 1:

        L_b(x) = (α/b)(b|x| + 1)·ln(b|x|/β + 1) − α|x|     for |x| < β,
                 γ|x| + γ/b − αβ                             otherwise.

    ``alpha``: α > 0, how much the inliers' gradient is promoted (smaller α, larger gradient near 0; not H_α's α);
    ``gamma``: γ > 0, the outliers' gradient (the tail slope); ``beta``: β > 0, where inliers end. Defaults are the
    paper's and mmdetection's (α = 0.5, γ = 1.5, β = 1). b is fixed by α·ln(b + 1) = γ, which makes ψ continuous at
    |x| = 1. At β = 1 this is the paper's loss, ψ = α·ln(b|x| + 1) inside; for β ≠ 1 it is mmdetection's
    generalisation, which keeps the factor (b|x| + 1) rather than (b|x| + β): the value stays continuous at |x| = β
    but ψ is α(1 − β)/β at 0⁺ and jumps at β (:func:`balanced_l1_loss_grad`).
    """
    return _balanced_call(_balanced_l1, x, alpha, gamma, beta)


def balanced_l1_loss_grad(x: ArrayLike, alpha: ArrayLike = 0.5, gamma: ArrayLike = 1.5,
                          beta: ArrayLike = 1.0) -> ArrayLike:
    """ψ(x) = sgn(x)·(α·ln(b|x|/β + 1) + α(1 − β)/(b|x| + β)) for |x| < β, γ·sgn(x) beyond (b = e^{γ/α} − 1);
    at β = 1 the paper's α·ln(b|x| + 1) (Libra R-CNN, Section 3.3). 0 at x = 0."""
    return _balanced_call(_balanced_l1_grad, x, alpha, gamma, beta)


def _laplace_kl_lower(x: ArrayLike, alpha: float) -> ArrayLike:
    return laplace_kl_loss(x, alpha, 1 / alpha)  # D_{α,1/α}, the lower bound of eq. 27: x²/2 + O(x³) (eq. 20)


def _laplace_kl_lower_grad(x: ArrayLike, alpha: float) -> ArrayLike:
    return laplace_kl_loss_grad(x, alpha, 1 / alpha)


def cauchy_kl_divergence(mu1: ArrayLike, s1: ArrayLike, mu2: ArrayLike, s2: ArrayLike) -> ArrayLike:
    """KL(Cauchy(μ₁, s₁) ‖ Cauchy(μ₂, s₂)) = log(((s₁ + s₂)² + (μ₁ − μ₂)²)/(4s₁s₂)) (Chyzak & Nielsen 2019).

    The Cauchy twin of the paper's eq. 63: as a function of x = μ₁ − μ₂ it is Barron's Cauchy loss
    ρ(x, 0, (s₁ + s₂)/√2) plus log((s₁ + s₂)²/(4s₁s₂)) ≥ 0, a constant, just as D_{α,β} is the Laplace KL less a
    constant (eq. 19). Evaluated with ``log1p`` (no cancellation for nearly equal distributions)."""
    for name, value, check in (("mu1", mu1, _inputs.check_real), ("s1", s1, _inputs.check_positive),
                               ("mu2", mu2, _inputs.check_real), ("s2", s2, _inputs.check_positive)):
        check(name, value)
    return _inputs.apply(_cauchy_kl, ("mu1", "s1", "mu2", "s2"), mu1, s1, mu2, s2)


#: the curves notebook 09 puts on one slider: key -> (name, ρ(x, c), ψ(x, c)); each is ½x² near 0 with ψ(x) ≈ x
#: there, the paper's two with α = c
SAME_CURVATURE = {
    "huber": ("Huber (eq. 5)", huber, huber_grad),
    "laplace_kl": ("Laplace KL, β = 1/α (eq. 19)", _laplace_kl_lower, _laplace_kl_lower_grad),
    "pseudo_huber": ("pseudo-Huber", pseudo_huber, pseudo_huber_grad),
    "cauchy": ("Cauchy", cauchy_loss, cauchy_loss_grad),
    "geman_mcclure": ("Geman–McClure", geman_mcclure_loss, geman_mcclure_loss_grad),
    "welsch": ("Welsch", welsch_loss, welsch_loss_grad),
}


def family(x: ArrayLike, scales: Sequence[float]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """ρ and ψ of every :data:`SAME_CURVATURE` curve on the grid ``x`` at each scale c (H_α's α) in ``scales``:
    key -> (ρ, ψ), each an array of shape (len(scales), len(x))."""
    grid = np.asarray(x, dtype=np.float64)
    if grid.ndim != 1:
        raise ValueError(f"x must be a 1-d grid, got shape {grid.shape}")
    cs = [float(_inputs.check_positive("scales", float(c))) for c in scales]
    return {key: (np.stack([loss(grid, c) for c in cs]), np.stack([grad(grid, c) for c in cs]))
            for key, (_, loss, grad) in SAME_CURVATURE.items()}
