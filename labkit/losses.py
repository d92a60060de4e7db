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
be arrays that broadcast against ``x``) and returns the same kind. Torch paths are differentiable to every order
w.r.t. every tensor argument: a first derivative of :func:`laplace_kl_loss` is the analytic one (eq. 21 for ``x``),
and its second derivative in ``x`` is eq. 22, 1/(αβ) at x = 0 included (the curvature of eq. 20).

Numerics. Written as in eq. 19, α·exp(−|x|/α) + |x| − α cancels catastrophically when |x| ≪ α (at α = 100,
|x| = 1e-3 every float32 digit is lost). With u = |x|/α the loss is (α/β)·g(u), g(u) = u + e^{−u} − 1 = u²·h(u) and
h(u) = Σ_j (−u)^j/(j+2)! (eq. 20 continued); eq. 21 is sgn(x)·g'(u)/β with g'(u) = 1 − e^{−u} = u·(1 − u·h(u)).
Below u = 1/2 both come from h's series, above it from the closed forms (relative error under ~10 ulp throughout).

Speed. On a CPU the eager path (:func:`laplace_kl_loss`, :class:`LaplaceKLLoss`) walks the residuals in chunks of
31 Ki elements with in-place ops on a few scratch rows: the rows stay in cache, and ops that small run on the calling
thread instead of waking torch's pool (on a busy machine every op could otherwise wait milliseconds for a
descheduled pool thread). It avoids what is slow here: fresh full-size buffers (page faults), bool masks and
``torch.where`` (a 0/1 float mask and ``lerp`` pick the branch), ``exp`` and ``expm1`` (``exp2`` is used). The
forward pass also writes ∂D/∂x, which a plain backward pass scales in place, and the reductions never build the
per-element loss. Anything beyond that (``create_graph=True``, gradients w.r.t. α or β) differentiates the plain
``torch.where`` composition (:func:`_kl_loss_exact`) with autograd, so higher derivatives are exact, never zero.
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
    "laplace_kl_best_scale",
    "LaplaceKLLoss",
    "SERIES_THRESHOLD",
]

#: below this u = |x|/α the Maclaurin series of h(u) = g(u)/u² is used (truncation < 1e-17 relative at 1/2)
SERIES_THRESHOLD = 0.5
# h's coefficients (−1)^j/(j+2)!, highest power first for Horner's rule. At u = 1/2 the first omitted term is below
# 1e-17 relative after 16 terms (float64) and below 3e-9 after 9 (float32 and narrower).
_H_COEFFS = tuple((-1) ** j / math.factorial(j + 2) for j in range(15, -1, -1))
_H_COEFFS_SHORT = _H_COEFFS[-9:]
#: elements per chunk of the fast kernels on CPU: under ATen's grain size (32768), so every op on a chunk runs on the
#: calling thread, and a multiple of the vector width; seven float32 scratch rows of it (868 KiB) stay in L2
_CHUNK = 31 * 1024


def _coeffs(dtype: torch.dtype) -> tuple[float, ...]:
    return _H_COEFFS if dtype == torch.float64 else _H_COEFFS_SHORT


# ---------------------------------------------------------------------------------------------------------------
# torch kernels (tensors in, tensors out; inputs already validated and broadcast-compatible)
# ---------------------------------------------------------------------------------------------------------------
def _h(v: torch.Tensor) -> torch.Tensor:
    """h(v) = (v + expm1(−v))/v² by its Maclaurin series (differentiable); accurate for |v| ≤ SERIES_THRESHOLD."""
    c = _coeffs(v.dtype)
    acc = v * c[0] + c[1]
    for ci in c[2:]:
        acc = acc * v + ci
    return acc


def _g(v: torch.Tensor) -> torch.Tensor:
    """g(v) = v + e^{−v} − 1 ≥ 0 without cancellation near v = 0 (differentiable to every order).

    The "double where": each branch is evaluated only on inputs where it is finite and accurate (the series on 0, the
    closed form on 1 elsewhere), so the branch ``torch.where`` discards can send back neither NaN nor inf gradients.
    The closed form uses exp, not expm1: autograd differentiates expm1 as (expm1 + 1), which loses every digit of
    e^{−v} in the tail, whereas exp's derivative is exp itself (and for |v| ≥ ½ there is no cancellation to avoid).
    """
    small = v.abs() < SERIES_THRESHOLD
    vs = torch.where(small, v, 0.0)
    vb = torch.where(small, 1.0, v)
    return torch.where(small, vs * vs * _h(vs), (vb - 1) + torch.exp(-vb))


def _l1(x: torch.Tensor) -> torch.Tensor:
    return x.abs()


def _l2(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * x


def _huber(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    # both branches are polynomials, finite everywhere, so torch.where differentiates cleanly to every order
    ax = x.abs()
    return torch.where(ax <= alpha, 0.5 * x * x, alpha * (ax - 0.5 * alpha))


def _huber_grad(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return torch.maximum(torch.minimum(x, alpha), -alpha)


def _kl_loss_exact(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """D_{α,β}(x), eq. 19, as a composition of differentiable ops (the reference for every derivative order).

    (α/β)·g(|x|/α) as in :func:`_g`, but below the threshold x²·h(|x|/α)/(αβ): written in x², not |x|², so that
    autograd's second derivative at x = 0 is 2h(0)/(αβ) = 1/(αβ) (eq. 22) rather than the 0 that sgn(0)² would give.
    """
    small = x.abs() < SERIES_THRESHOLD * alpha
    xs = torch.where(small, x, 0.0)
    ub = torch.where(small, alpha, x).abs() / alpha  # u = 1 where the closed form is not used
    closed = alpha / beta * ((ub - 1) + torch.exp(-ub))  # exp, not expm1: see _g
    return torch.where(small, xs * xs * _h(xs.abs() / alpha) / (alpha * beta), closed)


def _laplace_kl_loss_grad(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """D'_{α,β}(x), eq. 21, differentiable: x·(1 − u·h(u))/(αβ) below the threshold (again exact at x = 0)."""
    small = x.abs() < SERIES_THRESHOLD * alpha
    xs = torch.where(small, x, 0.0)
    xb = torch.where(small, alpha, x)
    us = xs.abs() / alpha
    closed = torch.sign(xb) * (1 - torch.exp(-xb.abs() / alpha)) / beta
    return torch.where(small, xs * (1 - us * _h(us)) / (alpha * beta), closed)


def _laplace_kl_loss_hess(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    return torch.exp(-x.abs() / alpha) / (alpha * beta)


def _laplace_kl_loss_approx(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    ax = x.abs()
    return torch.where(ax <= alpha, x * x / (2 * alpha * beta), (ax - alpha) / beta)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


# --- the fast path: chunked, in place, masks as 0/1 floats (see "Speed" in the module docstring) -------------------
def _operands(x, target, alpha, beta):
    """The broadcast shape; x and target flattened to it (views when they already have it); α, β 0-dim if scalar."""
    shape = torch.broadcast_shapes(*(v.shape for v in (x, target, alpha, beta) if v is not None))
    full = [None if v is None else v.expand(shape).reshape(-1) for v in (x, target)]
    par = [v.reshape(()) if v.numel() == 1 else v.expand(shape).reshape(-1) for v in (alpha, beta)]
    return shape, *full, *par


def _chunks(n: int, *operands):
    """(scratch rows, operand chunks) per chunk of the flat operands (0-dim and ``None`` ones passed whole)."""
    size = _CHUNK if operands[0].device.type == "cpu" else max(n, 1)  # off the CPU: one chunk, launches cost more
    rows = list(operands[0].new_empty((7, min(size, n))).unbind())
    parts = [v.split(size) if v is not None and v.dim() else [v] * -(-n // size) for v in operands]
    for chunk in zip(*parts):
        m = chunk[0].numel()
        yield (rows if m == rows[0].numel() else [r[:m] for r in rows]), chunk


def _horner(v, consts, out):
    """Σ_j consts[−1−j]·v^j into ``out``, one ``addcmul`` per step (consts are 0-dim tensors, highest power first)."""
    torch.addcmul(consts[1], v, consts[0], out=out)
    for c in consts[2:]:
        torch.addcmul(c, out, v, out=out)
    return out


def _fast_forward(x, target, alpha, beta, reduction: str, with_grad: bool):
    """D_{α,β}(x − target) per element, or its sum or mean, and (if ``with_grad``) the per-element gradient factor
    r = ∂D/∂x = sgn(d)·g'(u)/β (eq. 21), which the backward pass scales in place. Chunk by chunk, in a few rows.

    With v = −u/ln 2: where u ≥ ½, βD = |d| + α(2^v − 1) and −g' = 2^v − 1 (a few ulp); below, βD = |d|·u·h(u) and
    −g' = −u(1 − u·h(u)), h by Horner's rule in v. ``exp2`` because ``exp`` and ``expm1`` hand every chunk to the
    thread pool (and ``expm1`` is ten times slower).
    """
    shape, x, target, alpha, beta = _operands(x, target, alpha, beta)
    n, ln2, lim = x.numel(), math.log(2), -SERIES_THRESHOLD / math.log(2)
    out = x.new_empty(n) if reduction == "none" else None
    factor = x.new_empty(n) if with_grad else None
    neg_h = [x.new_tensor(-ln2 ** (j + 1) / math.factorial(j + 2)) for j in range(len(_coeffs(x.dtype)) - 1, -1, -1)]
    ln2_t, sums = x.new_tensor(ln2), []
    for (d, ad, em, vs, mask, hs, gs), (xc, tc, ac, bc, aln, oc, gc) in _chunks(
            n, x, target, alpha, beta, alpha * -ln2, out, factor):
        d = xc if tc is None else torch.sub(xc, tc, out=d)
        v = torch.div(torch.abs(d, out=ad), aln, out=em)  # v = −u/ln 2
        torch.clamp(v, min=lim, out=vs)  # the series' argument, kept where the series converges
        torch.gt(v, lim, out=mask)  # 1.0 where u < ½: bool masks and torch.where are an order slower here
        em = torch.exp2(v.clamp_(min=-126.0), out=em).sub_(1)  # e^{−u} − 1; 2^-126 is float32's last normal
        _horner(vs, neg_h, hs)  # number (exp2 is 3× slower on subnormals), and below it e^{−u} − 1 = −1 anyway
        if gc is not None:  # hs = −ln 2·h(u), a polynomial in v
            torch.addcmul(ln2_t, vs, hs, value=-ln2, out=gs).mul_(vs)  # ln2·v·(1 − v·hs) = −u(1 − u·h) = −g'
            torch.lerp(em, gs, mask, out=gs).copysign_(d)  # an exact choice (weight 0 or 1, both ends finite)
            torch.div(gs, bc, out=gc)  # |−g'| with the sign of d, over β
        torch.addcmul(ad, em, ac, out=em)  # βD = |d| + α(e^{−u} − 1), eq. 19
        hs.mul_(vs).mul_(ad)  # βD = |d|·u·h(u) = αu²h(u), eq. 20 continued
        torch.lerp(em, hs, mask, out=em)
        if oc is not None:
            torch.div(em, bc, out=oc)
        else:
            sums.append(em.sum() if bc.dim() == 0 else em.div_(bc).sum())
    factor = None if factor is None else factor.view(shape)
    if out is not None:
        return out.view(shape), factor
    total = torch.stack(sums).sum(dtype=torch.float64) if sums else x.new_zeros((), dtype=torch.float64)
    total = total / beta if beta.dim() == 0 else total  # chunk sums add up in float64
    return (total / n if reduction == "mean" else total).to(x.dtype), factor


def _exact_forward(x, target, alpha, beta, reduction):
    return _reduce(_kl_loss_exact(x if target is None else x - target, alpha, beta), reduction)


def _exact_grad(x, target, alpha, beta, grad, reduction):
    g = _laplace_kl_loss_grad(x if target is None else x - target, alpha, beta)
    return g * (grad / g.numel() if reduction == "mean" else grad)


_COMPILED = None


def _compiled():
    """``torch.compile`` of the plain composition, forward and gradient (one fused loop each; compiled once per
    process, on first use, never at import)."""
    global _COMPILED
    if _COMPILED is None:
        _COMPILED = (torch.compile(_exact_forward), torch.compile(_exact_grad))
    return _COMPILED


class _LaplaceKLLossFn(torch.autograd.Function):
    """D_{α,β}(x − target) (eq. 19), reduced as asked.

    The forward pass runs the fast kernel (or the compiled one) and keeps the gradient factor it computed on the way;
    a plain backward (gradients for x and target) scales that in place. Any other backward — ``create_graph=True``
    (a second derivative is coming) or gradients w.r.t. α or β — differentiates :func:`_kl_loss_exact` with
    autograd instead, so every order is exact.
    """

    @staticmethod
    def forward(ctx, x, target, alpha, beta, reduction: str, compiled: bool, grad_mode: bool):
        ctx.save_for_backward(x, target, alpha, beta)
        ctx.reduction, ctx.factor, ctx.kernels = reduction, None, None
        if torch.compiler.is_compiling():  # inside someone's torch.compile: trace the composition, not the chunk loop
            ctx.kernels = (_exact_forward, _exact_grad)
        elif compiled:
            ctx.kernels = _compiled()
        if ctx.kernels is not None:
            return ctx.kernels[0](x, target, alpha, beta, reduction)
        loss, ctx.factor = _fast_forward(x, target, alpha, beta, reduction, grad_mode and any(ctx.needs_input_grad[:2]))
        return loss

    @staticmethod
    def backward(ctx, grad):
        saved, need = ctx.saved_tensors, ctx.needs_input_grad[:4]
        create = torch.is_grad_enabled()  # True inside backward only under create_graph=True
        factor, ctx.factor = ctx.factor, None  # scaled in place below, so usable once
        if not (create or need[2] or need[3]):
            if ctx.kernels is not None:
                g = ctx.kernels[1](*saved, grad, ctx.reduction)
            else:  # a second backward (retain_graph=True) recomputes the factor, bit for bit
                factor = _fast_forward(*saved, ctx.reduction, True)[1] if factor is None else factor
                g = factor.mul_(grad / factor.numel() if ctx.reduction == "mean" else grad)
            x, target = saved[:2]
            return (g.sum_to_size(x.shape) if need[0] else None,
                    -g.sum_to_size(target.shape) if need[1] else None, None, None, None, None, None)
        ins = [v if v is None or create else v.detach().requires_grad_(n) for v, n in zip(saved, need)]
        with torch.enable_grad():
            loss = _exact_forward(*ins, ctx.reduction)
            grads = iter(torch.autograd.grad(loss, [v for v, n in zip(ins, need) if n], grad, create_graph=create))
        return (*(next(grads) if n else None for n in need), None, None, None)


def _laplace_kl_loss(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    return _LaplaceKLLossFn.apply(x, None, alpha, beta, "none", False, torch.is_grad_enabled())


def _laplace_kl_divergence(mu1, b1, mu2, b2) -> torch.Tensor:
    # eq. 63 regrouped: D_{b1,b2}(μ1 − μ2) + (r − 1 − log r) with r = b1/b2, and r − 1 − log r = g(log(b2/b1)):
    # both terms are ≥ 0 and neither cancels, so KL(p‖p) is exactly 0 and tiny divergences keep their digits.
    return _LaplaceKLLossFn.apply(mu1, mu2, b1, b2, "none", False, torch.is_grad_enabled()) + _g(torch.log(b2 / b1))


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
    analytic gradient (eq. 21 for ``x``) and exact derivatives of every order beyond it (eq. 22 for ∂²/∂x², 1/(αβ)
    at x = 0). Evaluated without cancellation for |x| ≪ α (see the module docstring).
    """
    _inputs.check_real("x", x)
    _inputs.check_positive("alpha", alpha)
    _inputs.check_positive("beta", beta)
    return _inputs.apply(_laplace_kl_loss, ("x", "alpha", "beta"), x, alpha, beta)


def laplace_kl_loss_grad(x: ArrayLike, alpha: ArrayLike, beta: ArrayLike) -> ArrayLike:
    """D'_{α,β}(x) = sgn(x)(1 − exp(−|x|/α))/β, eq. 21 (a series for |x| < α/2; exactly 0 at x = 0).

    Differentiable to every order; its derivative is eq. 22, 1/(αβ) at x = 0 included.
    """
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


def _laplace_kl_best_scale(x, b1) -> torch.Tensor:
    return x.abs() + b1 * torch.exp(-x.abs() / b1)


def laplace_kl_best_scale(x: ArrayLike, b1: ArrayLike) -> ArrayLike:
    """The prediction scale b₂ that minimises eq. 18's KL(Laplace(y, b₁) ‖ Laplace(y + x, b₂)) for residual ``x``:
    setting ∂/∂b₂ of eq. 63 to 0 gives b₂* = |x| + b₁e^{−|x|/b₁}, which is ≥ b₁ for every x (equal at x = 0) —
    a head that learns b₂ under this loss never predicts a scale below the label scale b₁. (The NLL, b₁ → 0: |x|.)"""
    _inputs.check_real("x", x)
    _inputs.check_positive("b1", b1)
    return _inputs.apply(_laplace_kl_best_scale, ("x", "b1"), x, b1)


_REDUCTIONS = ("none", "mean", "sum")


class LaplaceKLLoss(torch.nn.Module):
    """D_{α,β}(input − target) (eq. 19) as a module, a drop-in beside ``torch.nn.HuberLoss``.

    ``alpha``: label-noise scale; ``beta``: prediction-noise scale; ``reduction``: ``"mean"`` (default), ``"sum"``
    or ``"none"``. ``LaplaceKLLoss(alpha/2, 1/alpha)`` is the upper bound of ``HuberLoss(delta=alpha)`` (eq. 27).

    The eager path walks the residuals in cache-sized chunks and never builds the per-element loss for ``"mean"``
    or ``"sum"`` (forward + backward about 1.4× ``smooth_l1_loss`` on a 2-core CPU, see
    ``benchmarks/bench_losses.py``). ``compile=True`` runs forward and first backward as ``torch.compile``'d fused
    loops instead; the first call compiles (seconds, needs a C++ compiler). Either way values and first gradients
    agree to rounding, and second derivatives (``create_graph=True``) are exact. Inside a ``torch.compile`` of your
    own, the plain composition is traced (no chunk loop to unroll).
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
        return _LaplaceKLLossFn.apply(input, target, a, b, self.reduction, self.compile, torch.is_grad_enabled())

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, reduction={self.reduction!r}"
