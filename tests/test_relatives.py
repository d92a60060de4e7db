"""labkit.relatives (and the densities it implies, in labkit.densities) against independent references: Barron's
closed-form special cases and his general formula in mpmath at 50 digits, the ψ functions against mpmath's numerical
derivative of those closed forms and against autograd, mmdetection's Balanced L1 transcribed from its source, scipy
quadrature and scipy.stats distributions for the densities."""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from labkit import densities, relatives
from labkit.relatives import (balanced_l1_loss, balanced_l1_loss_grad, barron_loss, barron_loss_grad, cauchy_loss,
                              cauchy_loss_grad, geman_mcclure_loss, geman_mcclure_loss_grad, pseudo_huber,
                              pseudo_huber_grad, welsch_loss, welsch_loss_grad)

X = np.concatenate([-np.logspace(-5, 3, 17), [0.0], np.logspace(-5, 3, 17)])
TOL = {torch.float64: 1e-13, torch.float32: 2e-6}


# ---------------------------------------------------------------------------------------------------------------
# references, written from the papers' formulas (50 digits; independent of labkit's rearrangements)
# ---------------------------------------------------------------------------------------------------------------
def mp_barron(x, a, c):
    """Barron's ρ(x, α, c) = |α−2|/α·(((x/c)²/|α−2| + 1)^{α/2} − 1) for α ∉ {0, 2, ±∞}, as printed (at the
    caller's precision: mpmath.diff raises it)."""
    z, b = (mpmath.mpf(x) / c) ** 2, abs(mpmath.mpf(a) - 2)
    return b / a * ((z / b + 1) ** (mpmath.mpf(a) / 2) - 1)


# the special cases as Barron lists them, each with c² in front for the named losses (½x² at 0)
CLOSED = {
    2: lambda x, c: 0.5 * (x / c) ** 2,
    1: lambda x, c: mpmath.sqrt((x / c) ** 2 + 1) - 1,
    0: lambda x, c: mpmath.log(0.5 * (x / c) ** 2 + 1),
    -2: lambda x, c: 2 * (x / c) ** 2 / ((x / c) ** 2 + 4),
    -math.inf: lambda x, c: 1 - mpmath.exp(-0.5 * (x / c) ** 2),
}
NAMED = {1: (pseudo_huber, pseudo_huber_grad), 0: (cauchy_loss, cauchy_loss_grad),
         -2: (geman_mcclure_loss, geman_mcclure_loss_grad), -math.inf: (welsch_loss, welsch_loss_grad)}


def mp_values(f, xs, *args):
    with mpmath.workdps(50):
        return np.array([float(f(mpmath.mpf(float(x)), *map(mpmath.mpf, args))) for x in xs])


def mp_derivative(f, xs, *args):
    with mpmath.workdps(50):
        return np.array([float(mpmath.diff(lambda t: f(t, *map(mpmath.mpf, args)), mpmath.mpf(float(x))))
                         for x in xs])


# ---------------------------------------------------------------------------------------------------------------
# Barron's family and its named members
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", sorted(CLOSED))
@pytest.mark.parametrize("c", [0.3, 1.0, 7.0])
def test_barron_special_cases_are_the_closed_forms(alpha, c):
    want = mp_values(CLOSED[alpha], X, c)
    np.testing.assert_allclose(barron_loss(X, alpha, c), want, rtol=1e-14, atol=0)
    np.testing.assert_allclose(barron_loss_grad(X, alpha, c), mp_derivative(CLOSED[alpha], X, c), rtol=1e-12,
                               atol=1e-30)  # mpmath.diff resolves 50 digits of ρ ≈ O(1)
    if alpha in NAMED:  # the named loss is c² times Barron's, so ½x² at 0 like H_α
        loss, grad = NAMED[alpha]
        np.testing.assert_allclose(loss(X, c), c * c * want, rtol=1e-14, atol=0)
        np.testing.assert_allclose(grad(X, c), c * c * mp_derivative(CLOSED[alpha], X, c), rtol=1e-12, atol=1e-30)
    else:  # α = 2: the paper's L₂ in units of c
        np.testing.assert_allclose(barron_loss(X, 2, c), 0.5 * (X / c) ** 2, rtol=1e-15)


@pytest.mark.parametrize("alpha", [-40.0, -5.0, -1.0, -0.25, 0.5, 1.5, 3.0, 10.0])
def test_barron_general_form_against_mpmath(alpha):
    c = 1.7
    want = mp_values(mp_barron, X, alpha, c)
    np.testing.assert_allclose(barron_loss(X, alpha, c), want, rtol=1e-13, atol=0)
    grad = barron_loss_grad(X, alpha, c)
    np.testing.assert_allclose(grad, mp_derivative(mp_barron, X, alpha, c), rtol=1e-11, atol=1e-30)
    x32 = torch.tensor(X[np.abs(X) < 100], dtype=torch.float32)  # float32: no over/underflow in the window
    got = barron_loss(x32, alpha, c)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), mp_values(mp_barron, x32.numpy(), alpha, float(np.float32(c))),
                               rtol=TOL[torch.float32] * 10)


@pytest.mark.parametrize("special, eps", [(0.0, 1e-6), (0.0, -1e-9), (0.0, 1e-15), (2.0, 1e-6), (2.0, -1e-9),
                                          (2.0, 1e-13), (-math.inf, None)])
def test_barron_is_continuous_into_its_special_cases(special, eps):
    """Near α = 0 and α = 2 the printed form divides by ~0; labkit's is accurate there (mpmath) and joins the limit
    continuously: |ρ(α + ε) − ρ(α)| shrinks with ε. α → −∞ is approached by α = −10⁸."""
    alpha = -1e8 if eps is None else special + eps
    at_limit = barron_loss(X, special, 1.3)
    near = barron_loss(X, alpha, 1.3)
    assert np.isfinite(near).all() and np.isfinite(barron_loss_grad(X, alpha, 1.3)).all()
    np.testing.assert_allclose(near, mp_values(mp_barron, X, alpha, 1.3), rtol=1e-12, atol=0)
    # ρ depends on α with a derivative of order log(z) · z-ish size: a relative change of a few |ε|·log terms
    gap = 1e-7 if eps is None else 50 * abs(eps) * (1 + np.log1p(X ** 2).max())
    np.testing.assert_allclose(near, at_limit, rtol=gap, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("alpha", [0.0, 2.0, 1e-7, 2 - 1e-6, 2 + 1e-6, -math.inf, math.inf, -3.0])
def test_barron_gradients_are_finite_at_and_near_the_special_values(dtype, alpha):
    x = torch.tensor([-9.0, -1.0, 0.0, 1e-4, 2.0], dtype=dtype, requires_grad=True)  # e^{x²/2} fits float32
    a = torch.tensor(alpha, dtype=dtype, requires_grad=True)
    loss = barron_loss(x, a, 1.0)
    gx, ga = torch.autograd.grad(loss.sum(), (x, a))
    assert torch.isfinite(loss).all() and torch.isfinite(gx).all() and torch.isfinite(ga)
    torch.testing.assert_close(gx, barron_loss_grad(x.detach(), a.detach(), 1.0), rtol=TOL[dtype] * 10,
                               atol=TOL[dtype] / 100)  # autograd through expm1 (Welsch) is accurate to absolute ulps


def test_barron_autograd_gradcheck():
    x = torch.tensor([-2.5, -0.3, 0.7, 4.0], dtype=torch.float64, requires_grad=True)
    for alpha in (-3.0, 0.5, 1.2, 3.5):
        a = torch.tensor(alpha, dtype=torch.float64, requires_grad=True)
        c = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(barron_loss, (x, a, c))
        assert torch.autograd.gradgradcheck(barron_loss, (x, a, c))


@pytest.mark.parametrize("loss, grad", list(NAMED.values()))
def test_named_psi_is_the_autograd_derivative(loss, grad):
    x = torch.tensor(X, requires_grad=True)
    (auto,) = torch.autograd.grad(loss(x, 2.5).sum(), x)
    # autograd's chain through the closed form loses digits far out (expm1′ = expm1 + 1; the quotient rule): absolute
    # 1e-15 there, where ψ itself is tiny
    torch.testing.assert_close(grad(x.detach(), 2.5), auto, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("c", [0.1, 1.0, 20.0])
def test_named_losses_are_half_x_squared_at_zero_and_psi_redescends(c):
    small = np.array([-1e-4, 1e-5]) * c
    for loss, grad in NAMED.values():
        np.testing.assert_allclose(loss(small, c), 0.5 * small ** 2, rtol=1e-7)
        np.testing.assert_allclose(grad(small, c), small, rtol=1e-7)
    far = 1e3 * c
    assert pseudo_huber_grad(far, c) == pytest.approx(c, rel=1e-6)  # pseudo-Huber: slope c like H_α's α
    for grad in (cauchy_loss_grad, geman_mcclure_loss_grad, welsch_loss_grad):  # redescending
        assert abs(grad(far, c)) < 3e-3 * c
    assert cauchy_loss_grad(math.sqrt(2) * c, c) == pytest.approx(c / math.sqrt(2))  # ψ's maximum, by hand
    assert welsch_loss_grad(c, c) == pytest.approx(c * math.exp(-0.5))
    assert geman_mcclure_loss(1e8 * c, c) == pytest.approx(2 * c * c) and welsch_loss(1e8 * c, c) == c * c


def test_input_kinds_and_validation():
    assert isinstance(pseudo_huber(1.0, 2.0), float)
    assert pseudo_huber(np.ones(3, np.float32), 2.0).dtype == np.float32
    t = barron_loss(torch.ones(2, 3, dtype=torch.float32), torch.tensor([[0.0], [2.0]]), 1.0)
    assert t.dtype == torch.float32 and t.shape == (2, 3)
    torch.testing.assert_close(t[1], torch.full((3,), 0.5))  # α = 2 row: ½x²
    assert balanced_l1_loss(np.array([0.5, 2.0]), np.array([0.5, 0.25])).shape == (2,)
    with pytest.raises(ValueError, match="scale"):
        cauchy_loss(1.0, 0.0)
    with pytest.raises(ValueError, match="beta"):
        balanced_l1_loss(1.0, beta=-1.0)
    with pytest.raises(TypeError, match="alpha"):
        barron_loss(1.0, "cauchy", 1.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        welsch_loss(np.ones(3), np.ones(2))


# ---------------------------------------------------------------------------------------------------------------
# Balanced L1 against mmdetection
# ---------------------------------------------------------------------------------------------------------------
def mmdet_balanced_l1(pred, target, beta=1.0, alpha=0.5, gamma=1.5):
    """Transcribed from open-mmlab/mmdetection, mmdet/models/losses/balanced_l1_loss.py (``balanced_l1_loss``,
    unreduced; read at commit 83e2268), the implementation Libra R-CNN's authors released."""
    diff = torch.abs(pred - target)
    b = np.e ** (gamma / alpha) - 1
    loss = torch.where(
        diff < beta, alpha / b * (b * diff + 1) * torch.log(b * diff / beta + 1) - alpha * diff,
        gamma * diff + gamma / b - alpha * beta)
    return loss


@pytest.mark.parametrize("alpha, gamma, beta", [(0.5, 1.5, 1.0), (0.5, 1.5, 1 / 9), (0.2, 1.0, 2.0), (1.0, 3.0, 1.0)])
def test_balanced_l1_is_mmdetections(alpha, gamma, beta):
    x = torch.linspace(-3 * beta, 3 * beta, 601, dtype=torch.float64, requires_grad=True)
    want = mmdet_balanced_l1(x, torch.zeros_like(x), beta, alpha, gamma)
    torch.testing.assert_close(balanced_l1_loss(x, alpha, gamma, beta), want, rtol=1e-13, atol=1e-15)
    (auto,) = torch.autograd.grad(want.sum(), x)
    torch.testing.assert_close(balanced_l1_loss_grad(x.detach(), alpha, gamma, beta), auto, rtol=1e-12, atol=1e-15)


def test_balanced_l1_at_beta_one_is_the_papers():
    """Libra R-CNN, Section 3.3: ψ = α·ln(b|x| + 1) inside, γ outside, continuous at |x| = 1 since α·ln(b + 1) = γ;
    continuous value too. mmdetection's β ≠ 1 keeps the value continuous but not ψ (α(1 − β)/β at 0⁺)."""
    alpha, gamma = 0.5, 1.5
    b = math.exp(gamma / alpha) - 1
    x = np.array([0.01, 0.3, 0.9])
    np.testing.assert_allclose(balanced_l1_loss_grad(x, alpha, gamma, 1.0), alpha * np.log(b * x + 1), rtol=1e-14)
    assert balanced_l1_loss_grad(1 - 1e-12, alpha, gamma, 1.0) == pytest.approx(gamma, rel=1e-9)
    assert balanced_l1_loss_grad(0.0, alpha, gamma, 1.0) == 0.0
    for beta in (1.0, 1 / 9):
        assert balanced_l1_loss(beta * (1 - 1e-13), alpha, gamma, beta) == pytest.approx(
            balanced_l1_loss(beta, alpha, gamma, beta), rel=1e-9)
    assert balanced_l1_loss_grad(1e-15, alpha, gamma, 1 / 9) == pytest.approx(alpha * 8, rel=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# the curves notebook 09 shows
# ---------------------------------------------------------------------------------------------------------------
def test_family_holds_every_curve_at_every_scale():
    x, scales = np.linspace(-4, 4, 81), [0.5, 2.0]
    fam = relatives.family(x, scales)
    assert set(fam) == set(relatives.SAME_CURVATURE) and {"huber", "laplace_kl"} <= set(fam)
    for key, (rho, psi) in fam.items():
        assert rho.shape == psi.shape == (2, 81)
        _, loss, grad = relatives.SAME_CURVATURE[key]
        np.testing.assert_array_equal(rho[1], loss(x, 2.0))
        np.testing.assert_array_equal(psi[0], grad(x, 0.5))
        mid = np.abs(x) <= 0.1  # the common curvature: ½x² and ψ ≈ x near 0 (D_{α,1/α}: x²/2 + O(|x|³/α), eq. 20)
        np.testing.assert_allclose(rho[:, mid], np.broadcast_to(0.5 * x[mid] ** 2, (2, mid.sum())), rtol=0.1)
    with pytest.raises(ValueError, match="scales"):
        relatives.family(x, [0.0])


# ---------------------------------------------------------------------------------------------------------------
# densities
# ---------------------------------------------------------------------------------------------------------------
def integral(f, edges):
    return sum(integrate.quad(f, lo, hi, epsabs=1e-13, epsrel=1e-11, limit=200)[0] for lo, hi in zip(edges, edges[1:]))


@pytest.mark.parametrize("c", [0.1, 1.0, 5.0])
def test_pseudo_huber_density_is_the_hyperbolic_distribution(c):
    x = np.linspace(-6, 6, 49)
    np.testing.assert_allclose(densities.pseudo_huber_density(x, c), stats.genhyperbolic.pdf(x, 1, c * c, 0, scale=c),
                               rtol=1e-10)
    assert integral(lambda t: densities.pseudo_huber_density(t, c), [-np.inf, -c, c, np.inf]) == pytest.approx(1, 1e-9)


@pytest.mark.parametrize("c", [0.75, 1.0, 3.0, 30.0])
def test_cauchy_density_is_students_t(c):
    nu = 2 * c * c - 1
    x = np.linspace(-8, 8, 33)
    np.testing.assert_allclose(densities.cauchy_density(x, c), stats.t.pdf(x, nu, scale=c * math.sqrt(2 / nu)),
                               rtol=1e-9)
    assert integral(lambda t: densities.cauchy_density(t, c), [-np.inf, 0, np.inf]) == pytest.approx(1, 1e-8)
    assert densities.cauchy_density(torch.zeros(2, dtype=torch.float32), c).dtype == torch.float32


def test_cauchy_density_needs_scale_above_one_over_root_two():
    with pytest.raises(ValueError, match="infinite integral"):
        densities.cauchy_density(0.0, 0.7)
    with pytest.raises(ValueError, match="scale"):
        densities.cauchy_density(0.0, np.array([1.0, 0.5]))


@pytest.mark.parametrize("alpha, reference", [
    (2.0, lambda x, c: stats.norm.pdf(x, scale=c)),
    (0.0, lambda x, c: stats.cauchy.pdf(x, scale=math.sqrt(2) * c)),
    (1.0, lambda x, c: np.exp(-(np.sqrt((x / c) ** 2 + 1) - 1)) / (c * 2 * math.e * special.k1(1.0))),
    # ρ(x, 4, 1) = x²/2 + x⁴/8 and ∫exp(−x⁴/8 − x²/2) dx = e^{1/4}·K_{1/4}(1/4)
    (4.0, lambda x, c: np.exp(-0.5 * (x / c) ** 2 - (x / c) ** 4 / 8) / (c * math.exp(0.25) * special.kv(0.25, 0.25))),
])
@pytest.mark.parametrize("c", [0.5, 2.0])
def test_barron_density_closed_forms(alpha, reference, c):
    x = np.linspace(-5, 5, 41)
    np.testing.assert_allclose(densities.barron_density(x, alpha, c), reference(x, c), rtol=1e-11)


@pytest.mark.parametrize("alpha", [0.25, 1.0, 3.0, 10.0, math.inf])
def test_barron_density_integrates_to_one(alpha):
    c = 0.7
    total = integral(lambda t: densities.barron_density(t, alpha, c), [-np.inf, -c, 0, c, np.inf])
    assert total == pytest.approx(1.0, rel=1e-9)
    # the named losses' densities are Barron's at c = 1, where c²ρ = ρ
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(densities.barron_density(x, 1.0, 1.0), densities.pseudo_huber_density(x, 1.0),
                               rtol=1e-12)
    np.testing.assert_allclose(densities.barron_density(x, 0.0, 1.0), densities.cauchy_density(x, 1.0), rtol=1e-12)


@pytest.mark.parametrize("alpha", [-2.0, -math.inf, -0.5])
def test_bounded_losses_have_no_density(alpha):
    # the loss is bounded, so exp(−ρ) stays above a positive constant: its integral over [−L, L] grows like 2L·const
    bound = 1.0 if alpha == -math.inf else abs(alpha - 2) / abs(alpha)  # sup ρ = |α − 2|/|α|
    assert barron_loss(1e150, alpha, 1.0) == pytest.approx(bound, rel=1e-9)
    with pytest.raises(ValueError, match="no finite integral"):
        densities.barron_density(0.0, alpha, 1.0)
    with pytest.raises(TypeError, match="single real number"):
        densities.barron_density(0.0, np.array([0.0, 1.0]))


@pytest.mark.parametrize("alpha, gamma, beta", [(0.5, 1.5, 1.0), (0.2, 1.0, 0.5)])
def test_balanced_l1_density(alpha, gamma, beta):
    f = lambda t: densities.balanced_l1_density(t, alpha, gamma, beta)  # noqa: E731
    assert integral(f, [-np.inf, -beta, 0, beta, np.inf]) == pytest.approx(1.0, rel=1e-9)
    # the normaliser against mpmath's quadrature of exp(−L_b), L_b written out from mmdetection's formula
    with mpmath.workdps(30):
        b = mpmath.e ** (mpmath.mpf(gamma) / alpha) - 1
        inner = mpmath.quad(lambda t: mpmath.exp(-(alpha / b * (b * t + 1) * mpmath.log(b * t / beta + 1) - alpha * t)),
                            [0, beta])
        tail = mpmath.quad(lambda t: mpmath.exp(-(gamma * t + gamma / b - alpha * beta)), [beta, mpmath.inf])
        z = float(2 * (inner + tail))
    assert f(0.0) == pytest.approx(1 / z, rel=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# the KL reading: the Cauchy loss is the KL divergence of two Cauchy distributions, as D is of two Laplace ones
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mu1, s1, mu2, s2", [(0.0, 1.0, 0.0, 1.0), (1.5, 1.0, -0.5, 1.0), (3.0, 0.5, 0.0, 2.0),
                                              (-1.0, 2.0, 4.0, 0.3)])
def test_cauchy_kl_divergence_against_quadrature(mu1, s1, mu2, s2):
    p, q = stats.cauchy(mu1, s1), stats.cauchy(mu2, s2)
    kl = integral(lambda t: p.pdf(t) * (p.logpdf(t) - q.logpdf(t)), [-np.inf, min(mu1, mu2), max(mu1, mu2), np.inf])
    assert relatives.cauchy_kl_divergence(mu1, s1, mu2, s2) == pytest.approx(kl, rel=1e-8, abs=1e-12)
    # as a function of x = μ₁ − μ₂: Barron's Cauchy loss with c = (s₁ + s₂)/√2, plus a constant
    constant = math.log((s1 + s2) ** 2 / (4 * s1 * s2))
    assert relatives.cauchy_kl_divergence(mu1, s1, mu2, s2) == pytest.approx(
        barron_loss(mu1 - mu2, 0.0, (s1 + s2) / math.sqrt(2)) + constant, rel=1e-13, abs=1e-15)
    assert relatives.cauchy_kl_divergence(1e-9, 1.0, 0.0, 1.0) == pytest.approx(0.25e-18, rel=1e-12)  # no cancellation
