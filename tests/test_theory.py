"""labkit.theory: closed forms against quadrature, V against Monte Carlo of the estimates themselves, the known
limits, the optimum's location, the regression simulation at small and large p/n, the SymPy derivations against
the NumPy closed forms, and every bad parameter refused with its name."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import sympy
from scipy import integrate, stats

from labkit import losses, theory
from labkit.symbolic import mestimation
from labkit.symbolic.steps import require
from labkit.theory import noise as tn

#: one parameter set per noise, on a box-regression scale (σ = 0.03, b = 0.1), and a second, unit-scale set
NOISE_PARAMS = {
    "laplace": [dict(b=0.1), dict(b=1.0)],
    "gaussian": [dict(sigma=0.03), dict(sigma=1.0)],
    "gaussian+laplace": [dict(sigma=0.03, b=0.1), dict(sigma=2.0, b=0.5)],
    "contaminated": [dict(sigma=0.03, eps=0.1, outlier_scale=0.3), dict(sigma=1.0, eps=0.02, outlier_scale=10.0)],
}
CASES = [(noise, p) for noise, ps in NOISE_PARAMS.items() for p in ps]


def _sd(noise, p):
    return tn.noise_std(noise, tn.check_noise(noise, p))


# ------------------------------------------------------------------------------------------------- noise laws
@pytest.mark.parametrize("noise, p", CASES)
def test_densities_integrate_to_one_and_match_their_derivative(noise, p):
    q = tn.check_noise(noise, p)
    total = 2 * sum(integrate.quad(lambda x: float(tn.pdf(noise, x, q)), lo, hi, epsabs=0, epsrel=1e-12,
                                   limit=200)[0]
                    for lo, hi in zip([0.0] + tn.cuts(noise, q), tn.cuts(noise, q) + [np.inf]))
    assert total == pytest.approx(1.0, rel=1e-10)
    sd = _sd(noise, p)
    x = np.array([0.13, 0.7, 2.3]) * sd
    h = 1e-6 * sd
    fd = (tn.pdf(noise, x + h, q) - tn.pdf(noise, x - h, q)) / (2 * h)
    np.testing.assert_allclose(tn.pdf_derivative(noise, x, q), fd, rtol=1e-6)
    assert tn.density_at_zero(noise, q) == pytest.approx(float(tn.pdf(noise, 0.0, q)), rel=1e-14)


@pytest.mark.parametrize("sigma, b", [(0.03, 0.1), (1.0, 1e-3), (1e-3, 1.0), (5.0, 0.2)])
def test_gaussian_plus_laplace_density_is_the_convolution(sigma, b):
    # the erfc closed form against ∫ φ_σ(x − t)·e^{−|t|/b}/(2b) dt, including σ/b far from 1 (erfcx branch)
    q = {"sigma": sigma, "b": b}
    for x in (0.0, 0.5 * sigma, 3 * b, 4 * sigma + 4 * b):
        kinks = sorted({0.0, x})  # the Laplace factor's kink and the normal factor's peak
        edges = [-np.inf] + kinks + [np.inf]
        conv = sum(integrate.quad(lambda t: stats.norm.pdf(x - t, scale=sigma) * math.exp(-abs(t) / b) / (2 * b),
                                  lo, hi, epsabs=0, epsrel=1e-12, limit=200)[0] for lo, hi in zip(edges, edges[1:]))
        assert float(tn.pdf("gaussian+laplace", x, q)) == pytest.approx(conv, rel=1e-8)


@pytest.mark.parametrize("noise, p", CASES)
def test_sampler_matches_the_variance(noise, p):
    draws = tn.sample(noise, tn.check_noise(noise, p), 200_000, np.random.default_rng(0))
    var = tn.noise_variance(noise, tn.check_noise(noise, p))
    # the sample variance's standard error is √((m₄ − σ⁴)/N); 5 of them (m₄ ≤ 60σ⁴ for every law here)
    assert draws.var() == pytest.approx(var, rel=5 * math.sqrt(60 / 200_000))
    assert abs(draws.mean()) < 5 * math.sqrt(var / 200_000)


# ------------------------------------------------------------------------------------ closed forms and quadrature
@pytest.mark.parametrize("loss, noise", sorted(theory.CLOSED_FORMS))
def test_closed_forms_equal_quadrature(loss, noise):
    for p in NOISE_PARAMS[noise]:
        for factor in (0.01, 0.3, 1.0, 3.0, 30.0):
            alpha = factor * _sd(noise, p) if loss in ("huber", "laplace_kl") else None
            closed = theory.psi_moments(loss, alpha, noise, method="closed", **p)
            quad = theory.psi_moments(loss, alpha, noise, method="quad", **p)
            np.testing.assert_allclose(closed, quad, rtol=1e-8, err_msg=f"{loss} {noise} {p} alpha={alpha}")


def test_the_stated_textbook_forms():
    # Huber × Laplace as the brief states it, and Huber × Gaussian with Φ and φ (Huber 1964)
    b, sigma = 0.1, 0.03
    for alpha in (0.01, 0.1, 0.5):
        k = alpha / b
        stated = b**2 * (2 - 2 * (k + 1) * math.exp(-k)) / (1 - math.exp(-k)) ** 2
        assert theory.asymptotic_variance("huber", alpha, "laplace", b=b) == pytest.approx(stated, rel=1e-12)
        r = b / alpha
        assert theory.asymptotic_variance("laplace_kl", alpha, "laplace", b=b) == pytest.approx(
            2 * b**2 * (1 + r) / (1 + 2 * r), rel=1e-12)
        k = alpha / sigma
        Phi, phi = stats.norm.cdf(k), stats.norm.pdf(k)
        stated = (sigma**2 * (2 * Phi - 1 - 2 * k * phi) + 2 * alpha**2 * (1 - Phi)) / (2 * Phi - 1) ** 2
        assert theory.asymptotic_variance("huber", alpha, "gaussian", sigma=sigma) == pytest.approx(stated, rel=1e-10)
    # the classical tuning constant: k = 1.345 gives 95 % efficiency at the normal
    assert 1 / theory.asymptotic_variance("huber", 1.345, "gaussian", sigma=1.0) == pytest.approx(0.95, abs=1e-4)
    assert theory.asymptotic_variance("l1", None, "gaussian", sigma=2.0) == pytest.approx(math.pi / 2 * 4, rel=1e-14)


def test_psi_is_the_loss_derivative():
    x = np.linspace(-3, 3, 61)
    np.testing.assert_allclose(theory.psi("huber", x, 0.7), losses.huber_grad(x, 0.7), rtol=1e-14)
    np.testing.assert_allclose(theory.psi("laplace_kl", x, 0.7), losses.laplace_kl_loss_grad(x, 0.7, 1.0),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(theory.psi("l1", x), np.sign(x))


# ------------------------------------------------------------------------------------------------- known limits
@pytest.mark.parametrize("noise, p", CASES)
@pytest.mark.parametrize("loss", ["huber", "laplace_kl"])
def test_limits_are_the_mean_and_the_median(loss, noise, p):
    sd = _sd(noise, p)
    v_l1 = theory.asymptotic_variance("l1", None, noise, **p)
    assert v_l1 == pytest.approx(1 / (4 * tn.density_at_zero(noise, tn.check_noise(noise, p)) ** 2), rel=1e-14)
    assert theory.asymptotic_variance("l2", None, noise, **p) == pytest.approx(sd**2, rel=1e-14)
    # α → 0: ψ → a multiple of sgn, the median; the gap is O(α/scale)
    assert theory.asymptotic_variance(loss, 1e-7 * sd, noise, **p) == pytest.approx(v_l1, rel=1e-5)
    # α → ∞: Huber's ψ is x on all but e^{−α/scale} of the mass; D's ψ ≈ x/α up to O(scale/α)
    big = theory.asymptotic_variance(loss, 1e7 * sd, noise, **p)
    assert big == pytest.approx(sd**2, rel=1e-9 if loss == "huber" else 1e-4)


def test_huber_laplace_variance_increases_from_b2_to_2b2():
    b = 0.1
    alphas = np.geomspace(1e-4, 20, 200) * b  # beyond α ≈ 30b, V equals 2b² to double precision
    v = np.array([theory.asymptotic_variance("huber", a, "laplace", b=b) for a in alphas])
    assert np.all(np.diff(v) > 0)
    assert v[0] == pytest.approx(b**2, rel=1e-4) and v[-1] == pytest.approx(2 * b**2, rel=1e-7)
    assert theory.asymptotic_variance("huber", 1e3 * b, "laplace", b=b) == pytest.approx(2 * b**2, rel=1e-15)
    assert np.all((v > b**2) & (v < 2 * b**2))


def test_huber_and_laplace_kl_are_different_estimates():
    for noise, p in CASES:
        sd = _sd(noise, p)
        for f in (0.3, 1.0, 3.0):
            vh = theory.asymptotic_variance("huber", f * sd, noise, **p)
            vd = theory.asymptotic_variance("laplace_kl", f * sd, noise, **p)
            assert abs(vh / vd - 1) > 1e-3, (noise, p, f)
    # and their optima differ under the box-scale Gaussian + Laplace error
    p = dict(sigma=0.03, b=0.1)
    assert theory.optimal_alpha("huber", "gaussian+laplace", **p) > 1.3 * theory.optimal_alpha(
        "laplace_kl", "gaussian+laplace", **p)


# ------------------------------------------------------------------------------------------------ the optimum
@pytest.mark.parametrize("loss", ["huber", "laplace_kl"])
def test_optimum_is_the_median_under_laplace_and_the_mean_under_gaussian(loss):
    with pytest.raises(theory.OptimumAtBoundary) as info:
        theory.optimal_alpha(loss, "laplace", b=0.1)
    assert info.value.side == "lower" and info.value.alpha == pytest.approx(1e-3 * 0.1 * math.sqrt(2))
    with pytest.raises(theory.OptimumAtBoundary) as info:
        theory.optimal_alpha(loss, "gaussian", sigma=0.03)
    assert info.value.side == "upper" and "mean" in str(info.value)
    assert theory.optimal_alpha(loss, "gaussian", sigma=0.03, bounds=(0.01, 0.2), at_boundary="return") == 0.2


@pytest.mark.parametrize("loss", ["huber", "laplace_kl"])
@pytest.mark.parametrize("noise, p", [("contaminated", dict(sigma=0.03, eps=0.1, outlier_scale=0.3)),
                                      ("contaminated", dict(sigma=1.0, eps=0.02, outlier_scale=10.0)),
                                      ("gaussian+laplace", dict(sigma=0.03, b=0.1))])
def test_optimum_is_interior_under_contamination(loss, noise, p):
    best = theory.optimal_alpha(loss, noise, **p)
    v = lambda a: theory.asymptotic_variance(loss, a, noise, **p)  # noqa: E731
    assert v(best) < min(v(0.9 * best), v(1.1 * best))
    grid = np.geomspace(best / 3, best * 3, 121)
    assert v(best) <= min(v(a) for a in grid) * (1 + 1e-12)
    assert v(best) < min(theory.asymptotic_variance(m, None, noise, **p) for m in ("l1", "l2"))


# ------------------------------------------------------------------------------------------------ Monte Carlo
@pytest.mark.parametrize("loss, alpha, noise, p", [
    ("huber", 0.05, "gaussian+laplace", dict(sigma=0.03, b=0.1)),
    ("huber", 0.05, "laplace", dict(b=0.1)),
    ("huber", 0.03, "gaussian", dict(sigma=0.03)),
    ("laplace_kl", 0.03, "contaminated", dict(sigma=0.03, eps=0.1, outlier_scale=0.3)),
    ("l1", None, "laplace", dict(b=0.1)),
    ("l2", None, "contaminated", dict(sigma=0.03, eps=0.1, outlier_scale=0.3)),
])
def test_asymptotic_variance_against_monte_carlo_location_estimates(loss, alpha, noise, p):
    n, reps = 2000, 1000
    mc = theory.simulate_location(loss, alpha, noise, n=n, reps=reps, seed=16, **p)
    v = theory.asymptotic_variance(loss, alpha, noise, **p)
    # n·mean(θ̂²) estimates V with standard error n·std/√reps (≈ √(2/reps) ≈ 4.5 % of V, θ̂ being near normal);
    # 4 standard errors, and the O(1/n) (O(1/√n) for the median) finite-sample bias is far inside that
    se = n * mc.std / math.sqrt(reps)
    assert abs(n * mc.mean - v) <= 4 * se, (n * mc.mean, v, se)
    assert se < 0.07 * v


def test_regression_at_small_p_over_n_approaches_the_asymptotic_value():
    p_ = dict(sigma=0.03, b=0.1)
    v = theory.asymptotic_variance("huber", 0.05, "gaussian+laplace", **p_)
    small = theory.simulate_regression("huber", 0.05, "gaussian+laplace", n=1000, p=20, reps=200, seed=3, **p_)
    large = theory.simulate_regression("huber", 0.05, "gaussian+laplace", n=500, p=100, reps=10, seed=3, **p_)
    # at κ = p/n = 0.02 the excess over V is O(κ) (El Karoui et al. 2013): allow 3κ plus 3 standard errors
    se = 1000 * small.std / math.sqrt(small.n)
    assert abs(1000 * small.mean / v - 1) <= 3 * 0.02 + 3 * se / v
    assert 500 * large.mean / v > 1.3  # at κ = 0.2 the asymptotic formula is far off


def test_least_squares_regression_matches_its_exact_finite_sample_error():
    # Gaussian design: E‖θ̂ − θ*‖²/p = σ²/(n − p − 1) exactly, at any p/n
    n, p, sigma = 500, 100, 1.0
    mc = theory.simulate_regression("l2", None, "gaussian", n=n, p=p, reps=60, seed=5, sigma=sigma)
    exact = sigma**2 / (n - p - 1)
    assert abs(mc.mean - exact) <= 3 * mc.std / math.sqrt(mc.n)


def test_at_large_p_over_n_the_likelihood_loss_is_not_best():
    # Laplace noise: LAD is the MLE and asymptotically best (V = b² < V_Huber(α = b) ≈ 1.32 b²), yet at p/n = 0.2
    # Huber with α = b has the smaller error (Bean, Bickel, El Karoui, Yu 2013). Same seed = same data: paired.
    kw = dict(n=500, p=100, reps=20, seed=7, b=0.1)
    assert theory.asymptotic_variance("l1", None, "laplace", b=0.1) < theory.asymptotic_variance(
        "huber", 0.1, "laplace", b=0.1)
    lad = theory.simulate_regression("l1", None, "laplace", **kw)
    huber = theory.simulate_regression("huber", 0.1, "laplace", **kw)
    assert huber.mean < 0.95 * lad.mean


# ---------------------------------------------------------------------------------------------------- SymPy
def test_symbolic_derivations_hold_and_equal_the_numpy_closed_forms():
    steps, exprs = mestimation.derive_variances()
    require(steps)
    a, b, s = mestimation.alpha, mestimation.b, mestimation.sigma
    for alpha in (0.01, 0.1, 0.37, 2.0):
        at = {a: alpha, b: 0.1, s: 0.03}
        for name, noise, p in (("huber_laplace", "laplace", dict(b=0.1)), ("huber_gaussian", "gaussian",
                                                                          dict(sigma=0.03))):
            second, slope = theory.psi_moments("huber", alpha, noise, method="closed", **p)
            assert float(exprs[f"{name}_second"].subs(at)) == pytest.approx(second, rel=1e-12)
            assert float(exprs[f"{name}_slope"].subs(at)) == pytest.approx(slope, rel=1e-12)
            assert float(exprs[f"{name}_V"].subs(at)) == pytest.approx(
                theory.asymptotic_variance("huber", alpha, noise, **p), rel=1e-12)
        assert float(exprs["kl_laplace_V"].subs(at)) == pytest.approx(
            theory.asymptotic_variance("laplace_kl", alpha, "laplace", b=0.1), rel=1e-12)
    assert mestimation.beta not in exprs["kl_laplace_V"].free_symbols  # β cancels
    assert sympy.simplify(exprs["kl_laplace_slope"] * mestimation.beta - 1 / (a + b)) == 0


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call, words", [
    (lambda: theory.asymptotic_variance("smooth_l1", 1.0, "gaussian", sigma=1.0), ["loss", "huber", "laplace_kl"]),
    (lambda: theory.asymptotic_variance("huber", 1.0, "cauchy", sigma=1.0), ["noise", "gaussian+laplace"]),
    (lambda: theory.asymptotic_variance("huber", 1.0, "gaussian+laplace", sigma=1.0), ["missing b"]),
    (lambda: theory.asymptotic_variance("huber", 1.0, "laplace", b=1.0, sigma=1.0), ["unexpected sigma"]),
    (lambda: theory.asymptotic_variance("laplace_kl", 1.0, "laplace", b=1.0, beta=2.0), ["beta", "cancels"]),
    (lambda: theory.asymptotic_variance("huber", 1.0, "laplace", b=-1.0), ["b", "> 0"]),
    (lambda: theory.asymptotic_variance("huber", 1.0, "laplace", b="1"), ["b", "real number"]),
    (lambda: theory.asymptotic_variance("huber", 1.0, "contaminated", sigma=1.0, eps=1.5, outlier_scale=3.0),
     ["eps", "[0, 1)"]),
    (lambda: theory.asymptotic_variance("huber", 0.0, "laplace", b=1.0), ["alpha", "> 0"]),
    (lambda: theory.asymptotic_variance("huber", None, "laplace", b=1.0), ["alpha"]),
    (lambda: theory.asymptotic_variance("huber", 1.0, "laplace", method="mc", b=1.0), ["method", "quad"]),
    (lambda: theory.psi_moments("huber", 1.0, "gaussian+laplace", method="closed", sigma=1.0, b=1.0),
     ["no closed form"]),
    (lambda: theory.optimal_alpha("l2", "gaussian", sigma=1.0), ["loss", "huber"]),
    (lambda: theory.optimal_alpha("huber", "gaussian", bounds=(1.0, 0.1), sigma=1.0), ["bounds"]),
    (lambda: theory.optimal_alpha("huber", "gaussian", at_boundary="warn", sigma=1.0), ["at_boundary"]),
    (lambda: theory.simulate_regression("huber", 1.0, "gaussian", n=10, p=10, reps=2, seed=0, sigma=1.0),
     ["p must be < n"]),
    (lambda: theory.simulate_regression("huber", 1.0, "gaussian", n=100.0, p=1, reps=2, seed=0, sigma=1.0), ["n"]),
    (lambda: theory.simulate_location("huber", 1.0, "gaussian", n=100, reps=0, seed=0, sigma=1.0), ["reps"]),
    (lambda: theory.simulate_location("huber", 1.0, "gaussian", n=100, reps=2, seed="x", sigma=1.0), ["seed"]),
])
def test_bad_parameters_are_refused_by_name(call, words):
    with pytest.raises(ValueError) as info:
        call()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_theory_loads_neither_torch_nor_sympy():
    out = subprocess.run([sys.executable, "-c", "import sys, labkit.theory; "
                          "print(sorted(m for m in ('torch', 'sympy') if m in sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------------------------------------
# notebook 07: V(α) curves over σ/b (curves) and the exercises' checks
# ---------------------------------------------------------------------------------------------------------------
def test_variance_curves_match_the_pointwise_variance_and_mark_the_optima():
    alphas = np.geomspace(0.05, 20.0, 7)
    c = theory.variance_curves([0.0, 0.3], alphas)
    assert c.variance["huber"].shape == (2, 7) and c.ratios == (0.0, 0.3)
    assert c.variance["huber"][1, 3] == pytest.approx(
        theory.asymptotic_variance("huber", float(alphas[3]), "gaussian+laplace", sigma=0.3, b=1.0), rel=1e-12)
    # pure Laplace: V increases in α for both losses, the optimum is the lower end (the median's V = b²)
    for loss in ("huber", "laplace_kl"):
        assert np.all(np.diff(c.variance[loss][0]) > 0)
        assert c.optimum[loss][0][2] == "lower" and c.optimum[loss][0][0] == pytest.approx(0.05)
    assert c.median[0] == pytest.approx(1.0) and c.mean[0] == pytest.approx(2.0)
    assert c.at_rule["huber"][0] == pytest.approx((2.0 - 4.0 / math.e) / (1.0 - 1.0 / math.e) ** 2, rel=1e-9)
    # the mix: an interior optimum, below every grid value of V
    best, v, side = c.optimum["huber"][1]
    assert side is None and 0.05 < best < 20.0 and v <= c.variance["huber"][1].min() + 1e-12
    assert best == pytest.approx(theory.optimal_alpha("huber", "gaussian+laplace", sigma=0.3, b=1.0), rel=1e-6)
    with pytest.raises(ValueError):
        theory.variance_curves([-1.0])
    with pytest.raises(ValueError):
        theory.variance_curves([0.0], [1.0, 0.5])


def test_notebook07_exercise_checks():
    from labkit.theory import exercises
    assert exercises.rule_cost_under_laplace(None).correct is None
    assert exercises.rule_cost_under_laplace(1.32).correct is True
    assert exercises.rule_cost_under_laplace(1.0).correct is False
    assert exercises.optimum_under_mix(0.5, ratio=0.3).correct is True
    assert exercises.optimum_under_mix(1.0, ratio=0.3).correct is False
