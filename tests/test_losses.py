"""labkit.losses against independent references: torch's own losses and KL, mpmath at 50 digits, scipy quadrature,
autograd's gradcheck, and the paper's laws (eqs. 27–29) as property tests."""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize
from torch.autograd.gradcheck import GradcheckError

from labkit import losses
from labkit.losses import (
    LaplaceKLLoss,
    huber,
    huber_grad,
    l1_loss,
    l2_loss,
    laplace_kl_best_scale,
    laplace_kl_divergence,
    laplace_kl_loss,
    laplace_kl_loss_approx,
    laplace_kl_loss_grad,
    laplace_kl_loss_hess,
)

mpmath.mp.dps = 50

# ----------------------------------------------------------------------------------------------------------------
# mpmath references, written from the paper's closed forms at 50 digits (independent of labkit's rearrangements)
# ----------------------------------------------------------------------------------------------------------------


def mp_kl_loss(x: float, a: float, b: float) -> mpmath.mpf:
    x, a, b = mpmath.mpf(x), mpmath.mpf(a), mpmath.mpf(b)
    return (a * mpmath.exp(-abs(x) / a) + abs(x) - a) / b  # eq. 19


def mp_kl_loss_grad(x: float, a: float, b: float) -> mpmath.mpf:
    return mpmath.diff(lambda t: mp_kl_loss(t, a, b), mpmath.mpf(x)) if x != 0 else mpmath.mpf(0)


GRID_SCALES = np.logspace(-3, 3, 7)
GRID_ABS_X = np.logspace(-6, 4, 21)


def _grid(dtype):
    a, b, ax = np.meshgrid(GRID_SCALES, GRID_SCALES, GRID_ABS_X, indexing="ij")
    x = np.concatenate([ax.ravel(), -ax.ravel()]).astype(dtype)
    a = np.concatenate([a.ravel(), a.ravel()]).astype(dtype)
    b = np.concatenate([b.ravel(), b.ravel()]).astype(dtype)
    return x, a, b


@pytest.fixture(scope="module")
def mp_reference():
    """Reference values at the float32-rounded grid (exactly representable in float64 too)."""
    x, a, b = _grid(np.float32)
    x64, a64, b64 = x.astype(np.float64), a.astype(np.float64), b.astype(np.float64)
    loss = np.array([float(mp_kl_loss(*p)) for p in zip(x64, a64, b64)])
    # eq. 21 evaluated at 50 digits (its own closed form, checked against mpmath.diff in a separate test)
    grad = np.array(
        [float(mpmath.sign(p[0]) * -mpmath.expm1(-abs(mpmath.mpf(p[0])) / p[1]) / p[2]) for p in zip(x64, a64, b64)]
    )
    return x, a, b, loss, grad


@pytest.mark.parametrize("dtype,rtol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_kl_loss_precision_grid(mp_reference, dtype, rtol):
    x, a, b, ref_loss, ref_grad = mp_reference
    tx = torch.tensor(x, dtype=dtype, requires_grad=True)
    ta, tb = torch.tensor(a, dtype=dtype), torch.tensor(b, dtype=dtype)
    loss = laplace_kl_loss(tx, ta, tb)
    (g,) = torch.autograd.grad(loss.sum(), tx)
    rel = np.abs(loss.detach().double().numpy() - ref_loss) / ref_loss
    assert rel.max() <= rtol, f"worst loss at x={x[rel.argmax()]}, α={a[rel.argmax()]}: rel err {rel.max():.3g}"
    rel_g = np.abs(g.double().numpy() - ref_grad) / np.abs(ref_grad)
    assert rel_g.max() <= rtol, f"worst autograd gradient rel err {rel_g.max():.3g}"
    explicit = laplace_kl_loss_grad(tx.detach(), ta, tb).double().numpy()
    assert (np.abs(explicit - ref_grad) / np.abs(ref_grad)).max() <= rtol


def test_reference_gradient_formula_is_the_derivative():
    # eq. 21 used as the grid reference equals mpmath's numerical derivative of eq. 19
    for x, a, b in [(0.3, 2.0, 0.5), (-7.0, 0.1, 3.0), (1e-4, 50.0, 1.0)]:
        closed = mpmath.sign(x) * -mpmath.expm1(-abs(mpmath.mpf(x)) / a) / b
        assert abs(closed - mp_kl_loss_grad(x, a, b)) <= 1e-30 * max(1, abs(closed))


def test_the_textbook_form_would_fail_where_labkit_does_not():
    # α = 100, |x| = 1e-3 in float32: the eq. 19 form as written loses every digit; labkit keeps them.
    x = torch.tensor(1e-3, dtype=torch.float32)
    naive = (100 * torch.exp(-x.abs() / 100) + x.abs() - 100) / 1.0
    ref = float(mp_kl_loss(float(x), 100.0, 1.0))
    assert abs(float(naive) - ref) / ref > 0.5
    assert abs(float(laplace_kl_loss(x, 100.0, 1.0)) - ref) / ref < 1e-6


def test_gradient_exactly_zero_at_zero():
    for dtype in (torch.float32, torch.float64):
        x = torch.zeros(3, dtype=dtype, requires_grad=True)
        loss = laplace_kl_loss(x, 0.7, 1.3)
        (g,) = torch.autograd.grad(loss.sum(), x)
        assert torch.equal(g, torch.zeros_like(g))
        assert torch.equal(loss.detach(), torch.zeros_like(loss))
        assert laplace_kl_loss_grad(0.0, 2.0, 3.0) == 0.0
    assert huber_grad(0.0, 1.0) == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_nan_or_inf_for_finite_input(dtype):
    info = torch.finfo(dtype)
    x = torch.tensor([0.0, info.tiny, -info.tiny, 1e-30, 1.0, -1e4, 1e30, -1e30, info.max / 4], dtype=dtype)
    x = x[torch.isfinite(x)].requires_grad_(True)
    for a, b in [(1e-3, 1e3), (1e3, 1e-3), (1.0, 1.0)]:
        loss = laplace_kl_loss(x, a, b)
        (g,) = torch.autograd.grad(loss.sum(), x)
        assert torch.isfinite(g).all(), (a, b, g)
        assert not torch.isnan(loss).any(), (a, b, loss)
        assert (loss >= 0).all()
        assert torch.isfinite(laplace_kl_loss_hess(x.detach(), a, b)).all()


# ----------------------------------------------------------------------------------------------------------------
# Huber against torch's own implementations
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("alpha", [1e-3, 0.1, 1.0, 2.5, 100.0])
def test_huber_matches_torch_huber_loss(dtype, alpha):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1000, generator=gen, dtype=dtype) * 3 * alpha
    ref = F.huber_loss(x, torch.zeros_like(x), reduction="none", delta=alpha)
    torch.testing.assert_close(huber(x, alpha), ref)
    # smooth_l1 with β equals H_β / β (eq. 37)
    torch.testing.assert_close(
        huber(x, alpha) / alpha, F.smooth_l1_loss(x, torch.zeros_like(x), reduction="none", beta=alpha)
    )
    xr = x.clone().requires_grad_(True)
    (g_ref,) = torch.autograd.grad(F.huber_loss(xr, torch.zeros_like(x), reduction="sum", delta=alpha), xr)
    torch.testing.assert_close(huber_grad(x, alpha), g_ref)


# ----------------------------------------------------------------------------------------------------------------
# The KL divergence against torch.distributions and scipy quadrature
# ----------------------------------------------------------------------------------------------------------------
def _kl_by_quadrature(mu1, b1, mu2, b2):
    def integrand(t):
        logp = -abs(t - mu1) / b1 - math.log(2 * b1)
        logq = -abs(t - mu2) / b2 - math.log(2 * b2)
        return math.exp(logp) * (logp - logq)

    breaks = sorted({mu1, mu2})
    lo, hi = breaks[0] - 60 * b1, breaks[-1] + 60 * b1
    val, _ = integrate.quad(integrand, lo, hi, points=breaks, limit=400, epsabs=1e-13, epsrel=1e-12)
    return val


def test_kl_divergence_against_quadrature():
    rng = np.random.default_rng(1)
    for _ in range(40):
        mu1, mu2 = rng.normal(0, 3, 2)
        b1, b2 = np.exp(rng.uniform(-2, 2, 2))
        ref = _kl_by_quadrature(mu1, b1, mu2, b2)
        got = laplace_kl_divergence(mu1, b1, mu2, b2)
        assert got == pytest.approx(ref, rel=1e-7, abs=1e-10)


def test_kl_divergence_against_torch_distributions():
    from torch.distributions import Laplace, kl_divergence

    gen = torch.Generator().manual_seed(2)
    mu1, mu2 = torch.randn(2, 500, generator=gen, dtype=torch.float64)
    b1, b2 = torch.exp(torch.randn(2, 500, generator=gen, dtype=torch.float64))
    torch.testing.assert_close(
        laplace_kl_divergence(mu1, b1, mu2, b2), kl_divergence(Laplace(mu1, b1), Laplace(mu2, b2))
    )


def test_kl_divergence_is_zero_for_identical_distributions_and_loss_equals_kl_when_scales_match():
    assert laplace_kl_divergence(0.3, 1.7, 0.3, 1.7) == 0.0
    # eq. 19 with α = β is eq. 18 (the constants log(b2/b1) − 1 + α/β cancel)
    for x, s in [(0.2, 0.5), (-3.0, 2.0), (1e-5, 10.0)]:
        assert laplace_kl_loss(x, s, s) == pytest.approx(laplace_kl_divergence(x, s, 0.0, s), rel=1e-13, abs=1e-300)


# ----------------------------------------------------------------------------------------------------------------
# Hessian and the approximations
# ----------------------------------------------------------------------------------------------------------------
def test_hessian_is_derivative_of_gradient():
    x = torch.linspace(-5, 5, 101, dtype=torch.float64).requires_grad_(True)  # x = 0 included: D'' = 1/(αβ) there
    g = laplace_kl_loss_grad(x, 0.8, 1.9)
    (h,) = torch.autograd.grad(g.sum(), x)
    torch.testing.assert_close(h, laplace_kl_loss_hess(x.detach(), 0.8, 1.9))
    assert laplace_kl_loss_hess(0.0, 0.8, 1.9) == pytest.approx(1 / (0.8 * 1.9))  # eq. 20's curvature


@pytest.mark.parametrize("alpha,beta", [(0.5, 2.0), (3.0, 0.25)])
def test_piecewise_approximation_tends_to_the_loss(alpha, beta):
    # eq. 24 is the small-|x| quadratic (eq. 20) and the large-|x| line (eq. 23) of D_{α,β}
    for x in (1e-4 * alpha, 1e-3 * alpha):
        assert laplace_kl_loss_approx(x, alpha, beta) == pytest.approx(float(mp_kl_loss(x, alpha, beta)), rel=2e-3)
    for x in (40 * alpha, 80 * alpha):
        assert laplace_kl_loss_approx(x, alpha, beta) == pytest.approx(float(mp_kl_loss(x, alpha, beta)), rel=1e-12)


# ----------------------------------------------------------------------------------------------------------------
# The paper's laws as property tests (eqs. 27, 28, 29)
# ----------------------------------------------------------------------------------------------------------------
scales = st.floats(1e-3, 1e3)
residuals = st.floats(-1e4, 1e4, allow_nan=False)


@given(x=residuals, alpha=scales)
def test_huber_between_its_laplace_bounds(x, alpha):
    lo = laplace_kl_loss(x, alpha, 1 / alpha)
    hi = laplace_kl_loss(x, alpha / 2, 1 / alpha)
    h = huber(x, alpha)
    tol = 1e-12 * max(1.0, h)
    assert lo <= h + tol
    assert h <= hi + tol


@given(x=residuals, alpha=scales, beta=scales, gamma=st.floats(1e-2, 1e2))
def test_scaling_properties(x, alpha, beta, gamma):
    lhs28 = laplace_kl_loss(gamma * x, alpha, beta)
    assert lhs28 == pytest.approx(laplace_kl_loss(x, alpha / gamma, beta / gamma), rel=1e-9, abs=1e-300)
    lhs29 = gamma * laplace_kl_loss(x, alpha, beta)
    assert lhs29 == pytest.approx(laplace_kl_loss(x, alpha, beta / gamma), rel=1e-9, abs=1e-300)


# ----------------------------------------------------------------------------------------------------------------
# autograd
# ----------------------------------------------------------------------------------------------------------------
def test_gradcheck_every_torch_path():
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(12, generator=gen, dtype=torch.float64) * 2).requires_grad_(True)
    a = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    b = torch.rand(12, generator=gen, dtype=torch.float64).add(0.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, a, b: laplace_kl_loss(x, a, b), (x, a, b))
    assert torch.autograd.gradgradcheck(lambda x: laplace_kl_loss_grad(x, 0.7, 1.1), (x,))
    assert torch.autograd.gradcheck(lambda x, a: huber(x, a), (x, a))
    assert torch.autograd.gradcheck(lambda x: huber_grad(x, 0.9), (x,))
    assert torch.autograd.gradcheck(lambda x: laplace_kl_loss_approx(x, 0.9, 1.3), (x,))
    assert torch.autograd.gradcheck(lambda x: laplace_kl_loss_hess(x, 0.9, 1.3), (x,))
    mu2 = torch.randn(12, generator=gen, dtype=torch.float64).requires_grad_(True)
    b1 = torch.rand(12, generator=gen, dtype=torch.float64).add(0.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m1, s1, m2, s2: laplace_kl_divergence(m1, s1, m2, s2), (x, b1, mu2, b))
    tgt = torch.randn(12, generator=gen, dtype=torch.float64)
    for reduction in ("mean", "sum", "none"):
        module = LaplaceKLLoss(0.6, 1.4, reduction=reduction)
        assert torch.autograd.gradcheck(lambda inp: module(inp, tgt), (x,))


def test_module_matches_functional_and_reductions():
    gen = torch.Generator().manual_seed(4)
    inp, tgt = torch.randn(2, 5, 7, generator=gen)
    per = laplace_kl_loss(inp - tgt, 0.5, 2.0)
    torch.testing.assert_close(LaplaceKLLoss(0.5, 2.0, "none")(inp, tgt), per)
    torch.testing.assert_close(LaplaceKLLoss(0.5, 2.0, "sum")(inp, tgt), per.sum())
    torch.testing.assert_close(LaplaceKLLoss(0.5, 2.0)(inp, tgt), per.mean())
    assert "alpha=0.5" in repr(LaplaceKLLoss(0.5, 2.0))


def test_compiled_module_matches_eager():
    gen = torch.Generator().manual_seed(5)
    inp = torch.randn(257, generator=gen, requires_grad=True)
    tgt = torch.randn(257, generator=gen)
    eager = LaplaceKLLoss(0.3, 1.5)(inp, tgt)
    (g_eager,) = torch.autograd.grad(eager, inp)
    compiled = LaplaceKLLoss(0.3, 1.5, compile=True)(inp, tgt)
    (g_comp,) = torch.autograd.grad(compiled, inp)
    torch.testing.assert_close(compiled, eager)
    torch.testing.assert_close(g_comp, g_eager)


# ----------------------------------------------------------------------------------------------------------------
# derivatives of every order (issue 15): second derivatives against eq. 22, mpmath and gradgradcheck
# ----------------------------------------------------------------------------------------------------------------
def eq22(x, a, b):
    """D''_{α,β}(x) = exp(−|x|/α)/(αβ), eq. 22, written out here (1/(αβ) at x = 0 is its limit, eq. 20)."""
    return np.exp(-np.abs(x) / a) / (a * b)


def second_derivative(loss_fn, x):
    """diag ∂²(Σ loss)/∂x² by double backward (the loss is elementwise, so the Hessian is diagonal)."""
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss_fn(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    return h


class _SavesIntermediates(torch.autograd.Function):
    """The pre-fix design, kept here to show the checks below catch it: the backward multiplies by a tensor saved
    from the forward pass, so a second derivative treats it as a constant and comes out as zeros."""

    @staticmethod
    def forward(ctx, x, a, b):
        em = torch.expm1(-x.abs() / a)
        ctx.save_for_backward(x, em, b)
        return a * (x.abs() / a + em) / b

    @staticmethod
    def backward(ctx, g):
        x, em, b = ctx.saved_tensors
        return g * -torch.sign(x) * em / b, None, None


def test_second_derivative_example_from_the_issue():
    x = torch.tensor([0.3, 1.0, 2.5], dtype=torch.float64)
    h = second_derivative(lambda t: laplace_kl_loss(t, 1.0, 1.0), x)
    np.testing.assert_allclose(h.numpy(), [0.741, 0.368, 0.082], atol=5e-4)
    np.testing.assert_allclose(h.numpy(), eq22(x.numpy(), 1.0, 1.0), rtol=1e-14)
    # the old behaviour, zeros, fails the same comparison
    one = torch.tensor(1.0, dtype=torch.float64)
    old = second_derivative(lambda t: _SavesIntermediates.apply(t, one, one), x)
    assert torch.equal(old, torch.zeros(3, dtype=torch.float64))
    assert not np.allclose(old.numpy(), eq22(x.numpy(), 1.0, 1.0), rtol=1e-3)
    with pytest.raises(GradcheckError):  # and gradgradcheck, used below, rejects it
        torch.autograd.gradgradcheck(lambda t: _SavesIntermediates.apply(t, one, one), (x.requires_grad_(True),))


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.7, 2.5), (1e-3, 1e3), (100.0, 0.01)])
@pytest.mark.parametrize("path", ["functional", "module", "module_sum"])
def test_second_derivative_in_x_is_eq22(alpha, beta, path):
    # series branch (|x| ≪ α, x = 0 included), both sides of the switch at |x| = α/2, and the tail (|x| = 40α)
    rel = np.array([0.0, 1e-9, 1e-5, 0.01, 0.3, 0.4999999, 0.5, 0.5000001, 0.8, 1.0, 3.0, 40.0])
    x = torch.tensor(np.concatenate([rel, -rel[1:]]) * alpha, dtype=torch.float64)
    if path == "functional":
        fn = lambda t: laplace_kl_loss(t, alpha, beta)  # noqa: E731
    else:
        module = LaplaceKLLoss(alpha, beta, reduction="none" if path == "module" else "sum")
        fn = lambda t: module(t, torch.zeros_like(t))  # noqa: E731
    h = second_derivative(fn, x)
    np.testing.assert_allclose(h.numpy(), eq22(x.numpy(), alpha, beta), rtol=1e-13, atol=0)


def test_second_derivative_float32():
    x = torch.tensor([0.0, 1e-4, 0.2, 0.6, 2.0, -7.0])
    h = second_derivative(lambda t: laplace_kl_loss(t, 0.9, 1.7), x)
    np.testing.assert_allclose(h.numpy(), eq22(x.double().numpy(), 0.9, 1.7), rtol=1e-5)


def test_compiled_module_second_derivative():
    x = torch.tensor([0.0, 1e-6, 0.1, 0.3, 0.45, 0.6, 2.0, -5.0], dtype=torch.float64)
    module = LaplaceKLLoss(0.9, 1.3, reduction="sum", compile=True)
    h = second_derivative(lambda t: module(t, torch.zeros_like(t)), x)
    np.testing.assert_allclose(h.numpy(), eq22(x.numpy(), 0.9, 1.3), rtol=1e-13)
    inp = x.clone().requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda t: module(t, torch.zeros_like(t)), (inp,))


def test_inside_an_outer_torch_compile(monkeypatch):
    # under someone else's torch.compile the plain composition is traced, not the chunk loop (which would unroll)
    monkeypatch.setattr(losses, "_CHUNK", 7)
    gen = torch.Generator().manual_seed(15)
    inp, tgt = torch.randn(2, 60, generator=gen)
    module = LaplaceKLLoss(0.4, 1.6)
    compiled = torch.compile(lambda a, b: module(a, b))
    xr = inp.clone().requires_grad_(True)
    got = compiled(xr, tgt)
    (g,) = torch.autograd.grad(got, xr)
    xe = inp.clone().requires_grad_(True)
    ref = module(xe, tgt)
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(g, torch.autograd.grad(ref, xe)[0])


def _mp_partial(orders, x, a, b):
    return float(mpmath.diff(lambda s, t, u: mp_kl_loss(s, t, u), (x, a, b), orders))


@pytest.mark.parametrize("x,a,b", [(0.3, 2.0, 0.5), (-1e-3, 5.0, 1.3), (4.0, 0.7, 2.0), (-0.2, 0.41, 0.9)])
def test_every_second_partial_against_mpmath(x, a, b):
    # all six second partials of eq. 19 in (x, α, β), by autograd's double backward against mpmath's diff
    xa = torch.tensor([x, a, b], dtype=torch.float64, requires_grad=True)
    hess = torch.autograd.functional.hessian(lambda v: laplace_kl_loss(v[0], v[1], v[2]), xa)
    for i in range(3):
        for j in range(3):
            orders = [0, 0, 0]
            orders[i] += 1
            orders[j] += 1
            ref = _mp_partial(tuple(orders), x, a, b)
            assert float(hess[i, j]) == pytest.approx(ref, rel=1e-10, abs=1e-12), (i, j)


@pytest.mark.parametrize("scale", [1e-6, 0.05, 0.45, 0.55, 3.0, 60.0])
def test_gradgradcheck_kl_loss_in_x_alpha_beta(scale):
    # |x| = scale·α: deep in the series branch, near the switch, and far in the linear tail
    gen = torch.Generator().manual_seed(11)
    alpha = torch.rand(6, generator=gen, dtype=torch.float64).add(0.5).requires_grad_(True)
    beta = torch.rand(6, generator=gen, dtype=torch.float64).add(0.5).requires_grad_(True)
    sign = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    x = (sign * scale * alpha.detach() * torch.linspace(0.9, 1.1, 6, dtype=torch.float64)).requires_grad_(True)
    fn = lambda t, a, b: laplace_kl_loss(t, a, b)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, alpha, beta))
    assert torch.autograd.gradgradcheck(fn, (x, alpha, beta))
    scalar_a = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)  # a broadcast scalar α
    assert torch.autograd.gradgradcheck(lambda t, a: laplace_kl_loss(t, a, 1.3).sum(), (x, scalar_a))


def test_gradgradcheck_at_zero_and_the_module_reductions():
    x = torch.tensor([0.0, 1e-7, -2e-3, 0.3, 1.7], dtype=torch.float64, requires_grad=True)
    tgt = torch.tensor([0.0, 0.0, 0.1, -0.2, 4.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: laplace_kl_loss(t, 0.6, 1.4), (x,))
    for reduction in ("mean", "sum", "none"):
        module = LaplaceKLLoss(0.6, 1.4, reduction=reduction)
        assert torch.autograd.gradcheck(module, (x, tgt))
        assert torch.autograd.gradgradcheck(module, (x, tgt))


def test_gradgradcheck_other_torch_paths():
    gen = torch.Generator().manual_seed(12)
    x = (torch.randn(10, generator=gen, dtype=torch.float64) * 2).requires_grad_(True)
    x0 = torch.cat([x.detach(), torch.zeros(1, dtype=torch.float64)]).requires_grad_(True)
    a = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    b = torch.rand(11, generator=gen, dtype=torch.float64).add(0.5).requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda t, a, b: laplace_kl_loss_grad(t, a, b), (x0, a, b))
    assert torch.autograd.gradgradcheck(lambda t, a: huber(t, a), (x, a))
    assert torch.autograd.gradgradcheck(lambda t, a: huber_grad(t, a), (x, a))
    mu2 = torch.randn(11, generator=gen, dtype=torch.float64).requires_grad_(True)
    b1 = torch.rand(11, generator=gen, dtype=torch.float64).add(0.5).requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda m1, s1, m2, s2: laplace_kl_divergence(m1, s1, m2, s2), (x0, b1, mu2, b))
    b2 = b1.detach().clone().requires_grad_(True)  # b1 = b2: the series branch of r − 1 − log r
    assert torch.autograd.gradgradcheck(lambda m1, s1, m2, s2: laplace_kl_divergence(m1, s1, m2, s2), (x0, b1, mu2, b2))


def test_gradient_function_derivative_is_eq22_at_zero_too():
    x = torch.tensor([0.0, 1e-8, -0.1, 0.44, 0.46, 2.0], dtype=torch.float64, requires_grad=True)
    (h,) = torch.autograd.grad(laplace_kl_loss_grad(x, 0.9, 1.2).sum(), x)
    np.testing.assert_allclose(h.numpy(), eq22(x.detach().numpy(), 0.9, 1.2), rtol=1e-13)


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_huber_second_derivative_closed_form(alpha):
    # eq. 5: H_α'' = 1 for |x| < α and 0 beyond; smooth_l1 = H_α/α (eq. 37) so its second derivative is 1/α inside
    x = torch.tensor([0.0, 0.1, -0.3, 0.99, -1.01, 1.5, -4.0], dtype=torch.float64) * alpha
    inside = (x.abs() < alpha).double()
    torch.testing.assert_close(second_derivative(lambda t: huber(t, alpha), x), inside, rtol=0, atol=0)
    torch.testing.assert_close(second_derivative(lambda t: huber(t, alpha) / alpha, x), inside / alpha)
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(huber_grad(xr, alpha).sum(), xr)  # huber_grad's derivative is H_α'' too
    torch.testing.assert_close(g, inside, rtol=0, atol=0)
    # and the same from torch's own huber_loss, an independent implementation
    ref = second_derivative(lambda t: F.huber_loss(t, torch.zeros_like(t), reduction="none", delta=alpha), x)
    torch.testing.assert_close(ref, inside, rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_paths_without_higher_derivatives_raise_instead_of_returning_zeros():
    # functorch transforms and forward-mode AD are not supported by the autograd.Function: they must raise
    x = torch.tensor([0.3, -1.0], dtype=torch.float64)
    with pytest.raises(RuntimeError):
        torch.func.hessian(lambda t: laplace_kl_loss(t, 1.0, 1.0).sum())(x)
    import torch.autograd.forward_ad as fwAD

    with fwAD.dual_level(), pytest.raises((RuntimeError, NotImplementedError)):
        laplace_kl_loss(fwAD.make_dual(x, torch.ones_like(x)), 1.0, 1.0)


# ----------------------------------------------------------------------------------------------------------------
# the fast eager kernels: chunk boundaries, broadcasting, reductions and gradients against the plain composition
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [7, 1 << 14])
@pytest.mark.parametrize("dtype,rtol", [(torch.float32, 2e-6), (torch.float64, 1e-14)])
def test_fast_kernels_match_the_composition(monkeypatch, chunk, dtype, rtol):
    monkeypatch.setattr(losses, "_CHUNK", chunk)
    gen = torch.Generator().manual_seed(13)
    n = 3 * chunk + 5  # a ragged last chunk, and several chunks per thread
    scale = torch.logspace(-7, 3, n, dtype=torch.float64)
    x = (torch.randn(n, generator=gen, dtype=torch.float64) * scale).to(dtype)
    tgt = (torch.randn(n, generator=gen, dtype=torch.float64) * scale * 0.1).to(dtype)
    alpha, beta = torch.tensor(0.8, dtype=dtype), torch.tensor(1.7, dtype=dtype)
    exact = losses._kl_loss_exact((x - tgt).double(), alpha.double(), beta.double())
    exact_grad = losses._laplace_kl_loss_grad((x - tgt).double(), alpha.double(), beta.double())
    for reduction in ("none", "sum", "mean"):
        xr = x.clone().requires_grad_(True)
        got = LaplaceKLLoss(0.8, 1.7, reduction=reduction)(xr, tgt)
        ref = losses._reduce(exact, reduction)
        torch.testing.assert_close(got.double(), ref, rtol=rtol, atol=0)
        w = torch.rand(got.shape, generator=gen, dtype=dtype)  # a non-uniform upstream gradient
        (g,) = torch.autograd.grad((got * w).sum(), xr)
        ref_g = exact_grad * (w.double() / n if reduction == "mean" else w.double())
        torch.testing.assert_close(g.double(), ref_g, rtol=rtol, atol=1e-300)
    # per-element α and β that broadcast against x (the general, non-scalar path)
    a = torch.rand(2, 1, generator=gen, dtype=dtype) + 0.5
    b = torch.rand(1, 3, generator=gen, dtype=dtype) + 0.5
    xs = x[:6].reshape(2, 3) if n >= 6 else x
    torch.testing.assert_close(laplace_kl_loss(xs, a, b).double(),
                               losses._kl_loss_exact(xs.double(), a.double(), b.double()), rtol=rtol, atol=0)


def test_fast_path_odd_layouts_and_repeated_backward():
    gen = torch.Generator().manual_seed(14)
    x = torch.randn(40, 30, generator=gen, dtype=torch.float64)
    xt = x.t().requires_grad_(True)  # non-contiguous input
    loss = laplace_kl_loss(xt, 0.5, 2.0)
    torch.testing.assert_close(loss, losses._kl_loss_exact(xt.detach(), torch.tensor(0.5, dtype=torch.float64),
                                                           torch.tensor(2.0, dtype=torch.float64)))
    (g1,) = torch.autograd.grad(loss.sum(), xt, retain_graph=True)  # an expanded scalar upstream gradient
    (g2,) = torch.autograd.grad(loss.sum(), xt)  # a second backward through the same graph gives the same
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)
    torch.testing.assert_close(g1, laplace_kl_loss_grad(xt.detach(), 0.5, 2.0))
    # the target gets minus the input's gradient
    inp = torch.randn(50, generator=gen, dtype=torch.float64, requires_grad=True)
    tgt = torch.randn(50, generator=gen, dtype=torch.float64, requires_grad=True)
    gi, gt = torch.autograd.grad(LaplaceKLLoss(0.3, 1.1)(inp, tgt), (inp, tgt))
    torch.testing.assert_close(gt, -gi, rtol=0, atol=0)
    # empty input: like torch's losses, mean is nan and sum is 0
    empty = torch.zeros(0, dtype=torch.float64)
    assert torch.isnan(LaplaceKLLoss()(empty, empty)) and LaplaceKLLoss(reduction="sum")(empty, empty) == 0


# ----------------------------------------------------------------------------------------------------------------
# input kinds and bad input
# ----------------------------------------------------------------------------------------------------------------
def test_input_kinds_round_trip():
    assert isinstance(huber(0.5, 1.0), float)
    arr32 = np.linspace(-2, 2, 5, dtype=np.float32)
    out = laplace_kl_loss(arr32, 1.0, 2.0)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (5,)
    out = laplace_kl_loss(np.arange(3), np.array([1.0, 2.0, 3.0]), 1.0)
    assert out.dtype == np.float64
    t = torch.linspace(-1, 1, 4, dtype=torch.float64)
    assert laplace_kl_loss(t, 1.0, 1.0).dtype == torch.float64
    assert laplace_kl_loss(t.float(), 1.0, 1.0).dtype == torch.float32
    np.testing.assert_allclose(laplace_kl_loss(t.numpy(), 1.0, 1.0), laplace_kl_loss(t, 1.0, 1.0).numpy(), rtol=0)
    # broadcasting of parameter arrays
    grid = laplace_kl_loss(np.linspace(-1, 1, 3)[None, :], np.array([[0.5], [1.0]]), 1.0)
    assert grid.shape == (2, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = torch.randn(1000, dtype=torch.float64)
    torch.testing.assert_close(laplace_kl_loss(x.cuda(), 0.3, 2.0).cpu(), laplace_kl_loss(x, 0.3, 2.0))


@pytest.mark.parametrize(
    "kwargs,exc,words",
    [
        (dict(x=1.0, alpha=0.0, beta=1.0), ValueError, ["alpha", "0.0"]),
        (dict(x=1.0, alpha=-2.0, beta=1.0), ValueError, ["alpha", "-2.0"]),
        (dict(x=1.0, alpha=1.0, beta=0.0), ValueError, ["beta"]),
        (dict(x=1.0, alpha=float("nan"), beta=1.0), ValueError, ["alpha", "nan"]),
        (dict(x=1.0, alpha=1.0, beta=float("inf")), ValueError, ["beta", "inf"]),
        (dict(x=1.0, alpha="1", beta=1.0), TypeError, ["alpha"]),
        (dict(x="a", alpha=1.0, beta=1.0), TypeError, ["x"]),
        (dict(x=1.0, alpha=None, beta=1.0), TypeError, ["alpha"]),
        (dict(x=1.0, alpha=np.array([1.0, -1.0]), beta=1.0), ValueError, ["alpha", "-1.0"]),
        (dict(x=1.0, alpha=torch.tensor([1.0, 0.0]), beta=1.0), ValueError, ["alpha"]),
        (dict(x=np.ones(3), alpha=np.ones(2), beta=1.0), ValueError, ["broadcast", "x (3,)", "alpha (2,)"]),
        (dict(x=torch.ones(3), alpha=torch.ones(2), beta=1.0), ValueError, ["broadcast"]),
    ],
)
def test_bad_input_names_the_parameter(kwargs, exc, words):
    with pytest.raises(exc) as info:
        laplace_kl_loss(**kwargs)
    for w in words:
        assert w in str(info.value)


def test_bad_input_other_functions():
    with pytest.raises(ValueError, match="alpha"):
        huber(1.0, -1.0)
    with pytest.raises(ValueError, match="b2"):
        laplace_kl_divergence(0.0, 1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="reduction"):
        LaplaceKLLoss(1.0, 1.0, reduction="avg")
    with pytest.raises(ValueError, match="same shape"):
        LaplaceKLLoss()(torch.ones(3), torch.ones(4))
    with pytest.raises(TypeError, match="tensors"):
        LaplaceKLLoss()(np.ones(3), torch.ones(3))


def test_series_threshold_is_continuous():
    # both sides of the series/closed-form switch agree with mpmath (no seam)
    t = losses.SERIES_THRESHOLD
    for u in (t * (1 - 1e-7), t, t * (1 + 1e-7)):
        ref = float(mp_kl_loss(u * 3.0, 3.0, 1.0))
        assert laplace_kl_loss(u * 3.0, 3.0, 1.0) == pytest.approx(ref, rel=1e-14)


def test_read_only_arrays_are_accepted_without_warning(recwarn):
    arr = np.linspace(-2, 2, 5)
    arr.flags.writeable = False  # plotly hands out read-only arrays
    np.testing.assert_allclose(huber(arr, 1.0), F.huber_loss(torch.tensor(arr), torch.zeros(5, dtype=torch.float64),
                                                             reduction="none").numpy())
    assert not [w for w in recwarn if "not writable" in str(w.message)]


def test_l1_and_l2_match_torch():
    x = torch.linspace(-4, 4, 81, dtype=torch.float64)
    zero = torch.zeros_like(x)
    torch.testing.assert_close(l1_loss(x), F.l1_loss(x, zero, reduction="none"))
    torch.testing.assert_close(l2_loss(x), 0.5 * F.mse_loss(x, zero, reduction="none"))
    # H_α joins them: L₂ inside [−α, α], L₁ shifted by α/2 and scaled by α outside (eq. 5)
    inside, outside = x.abs() <= 1.5, x.abs() > 1.5
    torch.testing.assert_close(huber(x, 1.5)[inside], l2_loss(x)[inside])
    torch.testing.assert_close(huber(x, 1.5)[outside], 1.5 * (l1_loss(x)[outside] - 0.75))


@given(st.floats(-20, 20), st.floats(0.05, 5))
@settings(max_examples=60, deadline=None)
def test_best_kl_scale_minimises_the_kl_and_never_drops_below_the_label_scale(x, b1):
    # scipy's bounded minimiser of torch's own Laplace KL over the prediction scale b2
    def kl(log_b2):
        return float(torch.distributions.kl_divergence(
            torch.distributions.Laplace(torch.tensor(0.0, dtype=torch.float64), torch.tensor(b1, dtype=torch.float64)),
            torch.distributions.Laplace(torch.tensor(x, dtype=torch.float64),
                                        torch.tensor(math.exp(log_b2), dtype=torch.float64))))

    found = math.exp(optimize.minimize_scalar(kl, bounds=(-8, 5), method="bounded",
                                              options={"xatol": 1e-10}).x)
    best = laplace_kl_best_scale(x, b1)
    assert math.isclose(best, found, rel_tol=1e-4)
    assert best >= b1 * (1 - 1e-12)
    assert kl(math.log(best)) <= kl(math.log(best) + 1e-3) and kl(math.log(best)) <= kl(math.log(best) - 1e-3)
