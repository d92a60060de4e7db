"""The asymptotic variance V = E[ψ(ε)²]/E[ψ′(ε)]² of a location M-estimate (Huber 1964; Huber 1981, Section 3.2)
in SymPy: the integrals behind the closed forms that :mod:`labkit.theory` evaluates as plain NumPy.

ψ is obtained by differentiating the loss — H_α of eq. 5 (:func:`labkit.symbolic.series.huber_expr`) and D_{α,β}
as derived from Appendix A (eq. 21, :func:`labkit.symbolic.series.derive_behaviour`) — and integrated against the
noise density on x ≥ 0 (every ψ here is odd and every density even, so E[g(ε)] = 2∫₀^∞ g f for even g):

- Huber × Laplace(b) (eqs. 5 and 16): E[ψ²] = b²(2 − 2(k + 1)e^{−k}), E[ψ′] = 1 − e^{−k}, k = α/b; V → b² as
  α → 0 (the median's 1/(4f(0)²)) and → 2b² as α → ∞ (the variance);
- Huber × N(0, σ²) (eqs. 5 and 8): E[ψ²] = σ²(2Φ(k) − 1 − 2kφ(k)) + 2α²(1 − Φ(k)), E[ψ′] = 2Φ(k) − 1, k = α/σ;
  V → πσ²/2 as α → 0 and → σ² as α → ∞;
- D_{α,β} × Laplace(b) (eqs. 21 and 16): β cancels, V = 2b²(1 + r)/(1 + 2r), r = b/α.

Each :class:`~labkit.symbolic.steps.Step` has ``eq`` naming the loss's equation and the density's, e.g. ``"5, 16"``.
"""
from __future__ import annotations

import functools

import sympy
from sympy import exp, oo, pi, sqrt

from labkit.symbolic.series import derive_behaviour, huber_expr
from labkit.symbolic.steps import Step, is_zero, tex

__all__ = ["derive_variances", "variance_exprs", "alpha", "b", "sigma", "beta"]

alpha, b, sigma, beta = sympy.symbols("alpha b sigma beta", positive=True)
u = sympy.Symbol("u", positive=True)  # |x|
_k = sympy.Symbol("k", positive=True)


def _std_normal_cdf(z: sympy.Expr) -> sympy.Expr:
    return (1 + sympy.erf(z / sqrt(2))) / 2


def _huber_psi_pieces() -> tuple[sympy.Expr, sympy.Expr]:
    """ψ = H_α′ on 0 < u ≤ α and on u > α, read off the derivative of eq. 5's Piecewise."""
    (quad, inside), (linear, _) = sympy.diff(huber_expr(u, alpha), u).args
    if not (inside.subs(u, alpha / 2) == sympy.true and inside.subs(u, 2 * alpha) == sympy.false):
        raise AssertionError(f"unexpected branch order in H_alpha': {inside}")
    return quad, linear


def _huber_moments(density: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr]:
    """(E[ψ²], E[ψ′]) of Huber's ψ under the even density ``density`` (a function of u ≥ 0)."""
    quad, linear = _huber_psi_pieces()
    second = 2 * (sympy.integrate(quad**2 * density, (u, 0, alpha)) + sympy.integrate(linear**2 * density,
                                                                                       (u, alpha, oo)))
    slope = 2 * (sympy.integrate(sympy.diff(quad, u) * density, (u, 0, alpha))
                 + sympy.integrate(sympy.diff(linear, u) * density, (u, alpha, oo)))
    return sympy.simplify(second), sympy.simplify(slope)


def _limit_steps(eq: str, name: str, v: sympy.Expr, at_zero: sympy.Expr, at_inf: sympy.Expr) -> list[Step]:
    lo, hi = sympy.limit(v, alpha, 0, "+"), sympy.limit(v, alpha, oo)
    return [Step(eq, rf"\lim_{{\alpha\to 0}} V_{{\mathrm{{{name}}}}} = " + tex(at_zero), lo, is_zero(lo - at_zero),
                 "sympy.limit: the median's 1/(4f(0)²)"),
            Step(eq, rf"\lim_{{\alpha\to\infty}} V_{{\mathrm{{{name}}}}} = " + tex(at_inf), hi, is_zero(hi - at_inf),
                 "sympy.limit: the mean's Var(ε)")]


@functools.lru_cache(maxsize=None)
def derive_variances() -> tuple[tuple[Step, ...], dict[str, sympy.Expr]]:
    """The steps above; returns (steps, {"huber_laplace_second", "huber_laplace_slope", "huber_laplace_V",
    "huber_gaussian_second", …, "kl_laplace_V": expression}) in the symbols ``alpha``, ``b``, ``sigma``."""
    steps, out = [], {}
    # Huber × Laplace(b): f(u) = e^{−u/b}/(2b), eq. 16 with the mean at 0
    laplace = exp(-u / b) / (2 * b)
    second, slope = _huber_moments(laplace)
    claim2 = b**2 * (2 - 2 * (_k + 1) * exp(-_k)).subs(_k, alpha / b)
    claim1 = 1 - exp(-alpha / b)
    steps += [Step("5, 16", r"E[\psi^2] = " + tex(claim2), second, is_zero(second - claim2),
                   "2∫₀^α u²f + 2∫_α^∞ α²f, f the Laplace density"),
              Step("5, 16", r"E[\psi'] = " + tex(claim1), slope, is_zero(slope - claim1), "2∫₀^α f = P(|ε| ≤ α)")]
    v = second / slope**2
    steps += _limit_steps("5, 16", "Huber", v, b**2, 2 * b**2)
    out.update(huber_laplace_second=second, huber_laplace_slope=slope, huber_laplace_V=v)

    # Huber × N(0, σ²), eq. 8
    gauss = exp(-u**2 / (2 * sigma**2)) / sqrt(2 * pi * sigma**2)
    second, slope = _huber_moments(gauss)
    kk = alpha / sigma
    phi = exp(-kk**2 / 2) / sqrt(2 * pi)
    claim2 = sigma**2 * (2 * _std_normal_cdf(kk) - 1 - 2 * kk * phi) + 2 * alpha**2 * (1 - _std_normal_cdf(kk))
    claim1 = 2 * _std_normal_cdf(kk) - 1
    steps += [Step("5, 8", r"E[\psi^2] = " + tex(claim2), second, is_zero(second - claim2),
                   "the same integrals under the normal density (Huber 1964)"),
              Step("5, 8", r"E[\psi'] = " + tex(claim1), slope, is_zero(slope - claim1), "2Φ(α/σ) − 1")]
    v = second / slope**2
    steps += _limit_steps("5, 8", "Huber", v, pi * sigma**2 / 2, sigma**2)
    out.update(huber_gaussian_second=second, huber_gaussian_slope=slope, huber_gaussian_V=v)

    # D_{α,β} × Laplace(b): ψ is eq. 21 as derived, ψ′ its derivative (eq. 22) on u > 0
    _, derived = derive_behaviour()
    x = next(s for s in derived["grad"].free_symbols if s.name == "x")
    psi = derived["grad"].subs(x, u)
    second = sympy.simplify(2 * sympy.integrate(psi**2 * laplace, (u, 0, oo)))
    slope = sympy.simplify(2 * sympy.integrate(sympy.diff(psi, u) * laplace, (u, 0, oo)))
    v = sympy.simplify(second / slope**2)
    r = b / alpha
    claim = 2 * b**2 * (1 + r) / (1 + 2 * r)
    steps += [Step("21, 16", r"V_{D} = \frac{E[\psi^2]}{E[\psi']^2} = " + tex(claim), v, is_zero(v - claim),
                   "β scales ψ and ψ′ alike and cancels")]
    steps += _limit_steps("21, 16", "D", v, b**2, 2 * b**2)
    out.update(kl_laplace_second=second, kl_laplace_slope=slope, kl_laplace_V=v)
    return tuple(steps), out


def variance_exprs() -> dict[str, sympy.Expr]:
    """The derived expressions of :func:`derive_variances`, by name."""
    return derive_variances()[1]
