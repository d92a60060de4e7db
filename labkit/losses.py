"""The paper's losses: the Huber loss H_α (eq. 5) and the Laplace KL loss D_{α,β} (eq. 19), with their derivatives.

Symbols and arguments:

======================  =========================================================================================
paper                   here
======================  =========================================================================================
x                       ``x``: the residual; for D_{α,β} the difference of the two Laplace means (label − prediction)
α (Huber)               ``alpha``: where H_α turns from quadratic to linear
α, β (D_{α,β})          ``alpha``: scale b₁ of the label noise; ``beta``: scale b₂ of the prediction noise
μ₁, b₁, μ₂, b₂          ``mu1, b1, mu2, b2``: means and scales of p = Laplace(μ₁, b₁) and q = Laplace(μ₂, b₂)
======================  =========================================================================================

Every function takes Python floats, NumPy arrays or torch tensors (any device, float32/float64; the parameters may
be arrays that broadcast against ``x``) and returns the same kind. Torch paths support autograd; the gradient of
:func:`laplace_kl_loss` is the analytic one of eq. 21, not a derivative of the rounding-prone closed form.

Numerics. Written as in eq. 19, α·exp(−|x|/α) + |x| − α cancels catastrophically when |x| ≪ α (at α = 100,
|x| = 1e-3 every float32 digit is lost). With u = |x|/α the loss is (α/β)·g(u), g(u) = u + expm1(−u); we use that form
for u ≥ 1/4 (relative error a few ulp) and g's Maclaurin series (u²/2 − u³/6 + …, eq. 20 continued) below 1/4.
"""
from __future__ import annotations

import math

import torch

from labkit import _inputs
from labkit._inputs import ArrayLike

__all__ = [
    "l1_loss",
    "l2_loss",
    "huber",
    "huber_grad",
    "laplace_kl_loss",
    "laplace_kl_loss_grad",
    "laplace_kl_loss_hess",
    "laplace_kl_loss_approx",
    "laplace_kl_divergence",
    "LaplaceKLLoss",
    "SERIES_THRESHOLD",
]

#: below this |u| the Maclaurin series of g(u) = u + expm1(−u) is used (truncation < 1e-16 relative at 1/4)
SERIES_THRESHOLD = 0.25
# h(u) = g(u)/u² = Σ_j (−u)^j/(j+2)!, highest power first for Horner's rule. At u = 1/4 the first omitted term
# is below 1e-16 (float64) after 11 terms and below 1e-8 (float32 and narrower) after 7.
_H_COEFFS = tuple(1.0 / math.factorial(j + 2) for j in range(10, -1, -1))
_H_COEFFS_SHORT = _H_COEFFS[-7:]


# ---------------------------------------------------------------------------------------------------------------
# torch kernels (tensors in, tensors out; inputs already validated and broadcast-compatible)
# ---------------------------------------------------------------------------------------------------------------
def _h_series(v: torch.Tensor) -> torch.Tensor:
    """h(v) = (v + expm1(−v)) / v², by its Maclaurin series; accurate for |v| ≤ SERIES_THRESHOLD."""
    coeffs = _H_COEFFS if v.dtype == torch.float64 else _H_COEFFS_SHORT
    w = -v
    acc = w * coeffs[0] + coeffs[1]
    for c in coeffs[2:]:
        acc = acc.mul_(w).add_(c) if not acc.requires_grad else acc * w + c
    return acc


def _g(v: torch.Tensor) -> torch.Tensor:
    """g(v) = v + expm1(−v) = exp(−v) − 1 + v ≥ 0, without cancellation near v = 0 (differentiable)."""
    small = v.abs() < SERIES_THRESHOLD
    vs = torch.where(small, v, torch.zeros_like(v))  # keep the series branch finite everywhere
    vb = torch.where(small, torch.ones_like(v), v)  # and the closed-form branch away from its cancellation
    return torch.where(small, vs * vs * _h_series(vs), vb + torch.expm1(-vb))


def _l1(x: torch.Tensor) -> torch.Tensor:
    return x.abs()


def _l2(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * x


def _huber(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    ax = x.abs()
    return torch.where(ax <= alpha, 0.5 * x * x, alpha * (ax - 0.5 * alpha))


def _huber_grad(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return torch.maximum(torch.minimum(x, alpha), -alpha)


class _LaplaceKLLossFn(torch.autograd.Function):
    """D_{α,β}(x) with the analytic gradients: ∂/∂x by eq. 21, ∂/∂β = −D/β, ∂/∂α = (g(u) − u·g'(u))/β."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        ax = x.abs()
        u = ax / alpha
        e = torch.expm1(-u)  # −(1 − exp(−u)): eq. 21 without the sign and 1/β
        small = u < SERIES_THRESHOLD
        us = torch.where(small, u, torch.zeros_like(u))
        g = torch.where(small, us * us * _h_series(us), u + e)
        loss = alpha * g / beta
        ctx.save_for_backward(x, alpha, beta, u, e, g)
        return loss

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, alpha, beta, u, e, g = ctx.saved_tensors
        grad_x = grad_alpha = grad_beta = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad_out * (-torch.sign(x) * e / beta)).sum_to_size(x.shape)
        if ctx.needs_input_grad[1]:
            grad_alpha = (grad_out * (g + u * e) / beta).sum_to_size(alpha.shape)
        if ctx.needs_input_grad[2]:
            grad_beta = (grad_out * (-alpha * g / (beta * beta))).sum_to_size(beta.shape)
        return grad_x, grad_alpha, grad_beta


def _laplace_kl_loss(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    return _LaplaceKLLossFn.apply(x, alpha, beta)


def _laplace_kl_loss_grad(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    return -torch.sign(x) * torch.expm1(-x.abs() / alpha) / beta


def _laplace_kl_loss_hess(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    return torch.exp(-x.abs() / alpha) / (alpha * beta)


def _laplace_kl_loss_approx(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    ax = x.abs()
    return torch.where(ax <= alpha, x * x / (2 * alpha * beta), (ax - alpha) / beta)


def _laplace_kl_divergence(mu1, b1, mu2, b2) -> torch.Tensor:
    # eq. 63 regrouped: D_{b1,b2}(μ1 − μ2) + (r − 1 − log r) with r = b1/b2, and r − 1 − log r = g(log(b2/b1)):
    # both terms are ≥ 0 and neither cancels, so KL(p‖p) is exactly 0 and tiny divergences keep their digits.
    return _laplace_kl_loss(mu1 - mu2, b1, b2) + _g(torch.log(b2 / b1))


# ---------------------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------------------
def l1_loss(x: ArrayLike) -> ArrayLike:
    """L₁(x) = |x| (Section 3.1): the Laplace negative log-likelihood up to constants; robust, not smooth at 0."""
    _inputs.check_real("x", x)
    return _inputs.apply(_l1, ("x",), x)


def l2_loss(x: ArrayLike) -> ArrayLike:
    """L₂(x) = ½x² (Section 3.1, eq. 10): the Gaussian negative log-likelihood up to constants; H_α for |x| ≤ α."""
    _inputs.check_real("x", x)
    return _inputs.apply(_l2, ("x",), x)


def huber(x: ArrayLike, alpha: ArrayLike) -> ArrayLike:
    """Huber loss H_α(x), eq. 5: ½x² for |x| ≤ α, α(|x| − ½α) beyond.

    ``alpha`` is the paper's α > 0, the transition point (torch's ``huber_loss`` calls it ``delta``; note that
    ``smooth_l1_loss`` with ``beta=α`` equals H_α/α, eq. 37).
    """
    _inputs.check_real("x", x)
    _inputs.check_positive("alpha", alpha)
    return _inputs.apply(_huber, ("x", "alpha"), x, alpha)


def huber_grad(x: ArrayLike, alpha: ArrayLike) -> ArrayLike:
    """dH_α/dx of eq. 5: x for |x| ≤ α, α·sgn(x) beyond, i.e. x clipped to [−α, α]."""
    _inputs.check_real("x", x)
    _inputs.check_positive("alpha", alpha)
    return _inputs.apply(_huber_grad, ("x", "alpha"), x, alpha)


def laplace_kl_loss(x: ArrayLike, alpha: ArrayLike, beta: ArrayLike) -> ArrayLike:
    """The proposed loss D_{α,β}(x) = (α·exp(−|x|/α) + |x| − α)/β, eq. 19.

    ``alpha`` is the label-noise scale b₁ and ``beta`` the prediction-noise scale b₂ of eqs. 16–17; ``x`` is the
    difference of the two Laplace means. Minimum 0 at x = 0; D_{α,β} = KL(eq. 18) when α = β. Torch tensors get the
    analytic gradients (eq. 21 for ``x``). Evaluated without cancellation for |x| ≪ α (see the module docstring).
    """
    _inputs.check_real("x", x)
    _inputs.check_positive("alpha", alpha)
    _inputs.check_positive("beta", beta)
    return _inputs.apply(_laplace_kl_loss, ("x", "alpha", "beta"), x, alpha, beta)


def laplace_kl_loss_grad(x: ArrayLike, alpha: ArrayLike, beta: ArrayLike) -> ArrayLike:
    """D'_{α,β}(x) = sgn(x)(1 − exp(−|x|/α))/β, eq. 21 (computed with expm1; exactly 0 at x = 0)."""
    _inputs.check_real("x", x)
    _inputs.check_positive("alpha", alpha)
    _inputs.check_positive("beta", beta)
    return _inputs.apply(_laplace_kl_loss_grad, ("x", "alpha", "beta"), x, alpha, beta)


def laplace_kl_loss_hess(x: ArrayLike, alpha: ArrayLike, beta: ArrayLike) -> ArrayLike:
    """D''_{α,β}(x) = exp(−|x|/α)/(αβ), eq. 22 (x ≠ 0; its limit 1/(αβ) at 0, the curvature of eq. 20)."""
    _inputs.check_real("x", x)
    _inputs.check_positive("alpha", alpha)
    _inputs.check_positive("beta", beta)
    return _inputs.apply(_laplace_kl_loss_hess, ("x", "alpha", "beta"), x, alpha, beta)


def laplace_kl_loss_approx(x: ArrayLike, alpha: ArrayLike, beta: ArrayLike) -> ArrayLike:
    """The piecewise approximation of D_{α,β}, eq. 24: x²/(2αβ) for |x| ≤ α, (|x| − α)/β beyond.

    It joins eq. 20 (small |x|) and eq. 23 (large |x|); it is not continuous at |x| = α, as in the paper.
    """
    _inputs.check_real("x", x)
    _inputs.check_positive("alpha", alpha)
    _inputs.check_positive("beta", beta)
    return _inputs.apply(_laplace_kl_loss_approx, ("x", "alpha", "beta"), x, alpha, beta)


def laplace_kl_divergence(mu1: ArrayLike, b1: ArrayLike, mu2: ArrayLike, b2: ArrayLike) -> ArrayLike:
    """KL(Laplace(μ₁, b₁) ‖ Laplace(μ₂, b₂)) = (b₁e^{−|μ₁−μ₂|/b₁} + |μ₁−μ₂|)/b₂ + log(b₂/b₁) − 1, eq. 63 (= eq. 18).

    In the paper's reading p = Laplace(y, b₁) is the label's distribution (eq. 16) and q = Laplace(F(x), b₂) the
    prediction's (eq. 17). Evaluated as D_{b₁,b₂}(μ₁ − μ₂) + (r − 1 − log r), r = b₁/b₂, so it is ≥ 0 to the last bit.
    """
    _inputs.check_real("mu1", mu1)
    _inputs.check_positive("b1", b1)
    _inputs.check_real("mu2", mu2)
    _inputs.check_positive("b2", b2)
    return _inputs.apply(_laplace_kl_divergence, ("mu1", "b1", "mu2", "b2"), mu1, b1, mu2, b2)


_REDUCTIONS = ("none", "mean", "sum")


def _reduced_loss(input, target, alpha, beta, reduction: str) -> torch.Tensor:
    loss = _laplace_kl_loss(input - target, alpha, beta)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


_COMPILED = None


def _compiled_reduced_loss():
    global _COMPILED  # compiled once per process, on first use, never at import
    if _COMPILED is None:
        _COMPILED = torch.compile(_reduced_loss)
    return _COMPILED


class LaplaceKLLoss(torch.nn.Module):
    """D_{α,β}(input − target) (eq. 19) as a module, a drop-in beside ``torch.nn.HuberLoss``.

    ``alpha``: label-noise scale; ``beta``: prediction-noise scale; ``reduction``: ``"mean"`` (default), ``"sum"``
    or ``"none"``. ``LaplaceKLLoss(alpha/2, 1/alpha)`` is the upper bound of ``HuberLoss(delta=alpha)`` (eq. 27).

    ``compile=True`` runs the loss through ``torch.compile`` (one fused kernel forward, one backward; on a 2-core CPU
    about as fast as ``smooth_l1_loss``, see ``benchmarks/bench_losses.py``). The first call compiles (tens of
    seconds, needs a C++ compiler); values and gradients are the same as the eager path.
    """

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, reduction: str = "mean", compile: bool = False) -> None:
        super().__init__()
        _inputs.check_positive("alpha", alpha)
        _inputs.check_positive("beta", beta)
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got reduction={reduction!r}")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.reduction = reduction
        self.compile = bool(compile)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not isinstance(input, torch.Tensor) or not isinstance(target, torch.Tensor):
            raise TypeError(
                f"LaplaceKLLoss takes tensors, got input {type(input).__name__} and target {type(target).__name__}"
            )
        if input.shape != target.shape:
            raise ValueError(f"input and target must have the same shape, got {tuple(input.shape)} and "
                             f"{tuple(target.shape)}")
        a = torch.tensor(self.alpha, dtype=input.dtype, device=input.device)
        b = torch.tensor(self.beta, dtype=input.dtype, device=input.device)
        fn = _compiled_reduced_loss() if self.compile else _reduced_loss
        return fn(input, target, a, b, self.reduction)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, reduction={self.reduction!r}"
