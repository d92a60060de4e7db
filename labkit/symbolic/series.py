"""Sections 4.2–4.3 in SymPy: D_{α,β} near 0 and far out, its piecewise approximations, and its scaling laws.

:func:`derive_behaviour` differentiates the loss derived in Appendix A (eqs. 21–22), expands it (eq. 20), takes
the large-|x| limit (eq. 23) and joins the two into eqs. 24–26; :func:`derive_properties` shows eqs. 28–31 by
solving for D's parameters after scaling its input or output (:func:`labkit.symbolic.kl.loss_parameters`).
"""
from __future__ import annotations

import functools

import sympy
from sympy import Abs, exp

from labkit.symbolic.kl import derive_loss, laplace_kl_loss_expr, loss_parameters
from labkit.symbolic.steps import Step, is_zero, tex

__all__ = ["huber_expr", "derive_behaviour", "derive_properties", "approximation_expr"]

x = sympy.Symbol("x", real=True)
alpha, beta, gamma = sympy.symbols("alpha beta gamma", positive=True)
u = sympy.Symbol("u", positive=True)  # |x| on one half line; D is even, so x = u and x = −u cover the real line


def huber_expr(at: sympy.Expr, alpha_: sympy.Expr) -> sympy.Expr:
    """The Huber loss H_α of eq. 5 as a SymPy Piecewise."""
    return sympy.Piecewise((at**2 / 2, Abs(at) <= alpha_), (alpha_ * (Abs(at) - alpha_ / 2), True))


def approximation_expr(at: sympy.Expr, alpha_: sympy.Expr, beta_: sympy.Expr) -> sympy.Expr:
    """The piecewise approximation of D_{α,β} stated in eq. 24 (the claim :func:`derive_behaviour` arrives at)."""
    return sympy.Piecewise((at**2 / (2 * alpha_ * beta_), Abs(at) <= alpha_), ((Abs(at) - alpha_) / beta_, True))


def _both_sides(expr: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr]:
    return expr.subs(x, u), expr.subs(x, -u)


@functools.lru_cache(maxsize=None)
def derive_behaviour() -> tuple[tuple[Step, ...], dict[str, sympy.Expr]]:
    """Eqs. 21, 22, 20, 23, 24, 25, 26 from the derived loss; returns (steps, {name: derived expression})."""
    _, loss = derive_loss()
    D = loss.subs(sympy.Symbol("x", real=True), x)
    steps, out = [], {}
    # eq. 21 on each half line (x = ±u) so no DiracDelta from d|x|/dx appears
    grad = sympy.simplify(sympy.diff(D, x))
    claim21 = sympy.sign(x) / beta * (1 - exp(-Abs(x) / alpha))
    steps.append(Step("21", r"D'_{\alpha,\beta}(x) = " + tex(claim21), grad,
                      all(is_zero(g - c) for g, c in zip(_both_sides(grad), _both_sides(claim21))),
                      "sympy.diff of eq. 19, compared on x > 0 and x < 0",
                      because="The slope grows smoothly from 0 and saturates at $\\pm 1/\\beta$: that is the "
                              "robustness."))
    hess = [sympy.simplify(sympy.diff(D.subs(x, s * u), u, 2)) for s in (1, -1)]  # d²/dx² = d²/du² for x = ±u
    claim22 = exp(-Abs(x) / alpha) / (alpha * beta)
    steps.append(Step("22", r"D''_{\alpha,\beta}(x) = " + tex(claim22), sympy.Tuple(*hess),
                      all(is_zero(h - claim22.subs(x, u)) for h in hess), "second derivative on each half line",
                      because="The curvature is largest at 0 and dies away beyond a few $\\alpha$."))
    out["grad"], out["hess"] = grad, claim22
    # eq. 20: D(0), D'(0) and D''(0) (one-sided limits agree), and the series in |x|
    d0 = D.subs(x, 0)
    g0 = [sympy.limit(g, u, 0) for g in _both_sides(grad)]
    h0 = [sympy.limit(h, u, 0) for h in hess]
    quadratic = d0 + g0[0] * x + h0[0] / 2 * x**2
    series = sympy.series(D.subs(x, u), u, 0, 3).removeO()
    steps.append(Step("20", r"D_{\alpha,\beta}(x) \approx D(0) + D'(0)x + \tfrac{1}{2}D''(0)x^2 = " + tex(quadratic),
                      sympy.Tuple(d0, *g0, *h0, series),
                      d0 == 0 and g0[0] == g0[1] == 0 and is_zero(h0[0] - h0[1])
                      and is_zero(quadratic - x**2 / (2 * alpha * beta)) and is_zero(series - u**2 / (2 * alpha * beta)),
                      "D(0) = 0, D'(0) = 0 and D''(0) = 1/(αβ) from both sides; Maclaurin series in |x| to order 2",
                      because="Near 0 the loss is a parabola of curvature $1/(\\alpha\\beta)$, like $L_2$."))
    out["quadratic"] = quadratic
    # eq. 23: the exponential dies out, so D − (|x| − α)/β → 0 as |x| → ∞
    linear = (Abs(x) - alpha) / beta
    gap = sympy.limit((D - linear).subs(x, u), u, sympy.oo)
    steps.append(Step("23", r"\lim_{|x|\to\infty} \Big(D_{\alpha,\beta}(x) - " + tex(linear) + r"\Big) = " + tex(gap),
                      gap, gap == 0, "sympy.limit at +∞ (and by symmetry at −∞)",
                      because="Far out the exponential dies and a shifted line is left, like $L_1$."))
    out["linear"] = linear
    # eqs. 24–26: quadratic inside |x| ≤ α, linear beyond; then the two configurations of β = 1/α
    approx = sympy.Piecewise((quadratic, Abs(x) <= alpha), (linear, True))
    out["approx"] = approx
    steps.append(Step("24", r"D_{\alpha,\beta}(x) \approx " + tex(approx), approx,
                      _same_piecewise(approx, approximation_expr(x, alpha, beta)),
                      "eq. 20 for |x| ≤ α, eq. 23 beyond",
                      because="Glue the parabola and the line at $|x| = \\alpha$: a Huber-like shape."))
    for eq, a, claim in (("25", alpha, sympy.Piecewise((x**2 / 2, Abs(x) <= alpha), (alpha * (Abs(x) - alpha), True))),
                         ("26", alpha / 2, sympy.Piecewise((x**2, Abs(x) <= alpha),
                                                           (alpha * (Abs(x) - alpha / 2), True)))):
        # eq. 24 for D_{a,1/α}, pieces split at |x| = α as the paper does (for a = α/2 the inner quadratic is kept)
        special = sympy.Piecewise((quadratic.subs({alpha: a, beta: 1 / alpha}), Abs(x) <= alpha),
                                  (linear.subs({alpha: a, beta: 1 / alpha}), True))
        name = r"D_{\alpha,1/\alpha}(x)" if eq == "25" else r"D_{\alpha/2,1/\alpha}(x)"
        steps.append(Step(eq, name + r" \approx " + tex(special), special, _same_piecewise(special, claim),
                          f"eq. 24 with α → {a}, β → 1/α",
                          because="With $\\beta = 1/\\alpha$ the pieces match $H_\\alpha$'s near 0 (eq. 25) or far "
                                  "out (eq. 26)."))
        out[f"approx_{eq}"] = special
    return tuple(steps), out


def _same_piecewise(a: sympy.Piecewise, b: sympy.Piecewise) -> bool:
    """Same conditions, and the same expression under each condition."""
    return len(a.args) == len(b.args) and all(
        ca == cb and is_zero(ea - eb) for (ea, ca), (eb, cb) in zip(a.args, b.args))


_WHY_SCALING = {
    "28": "Stretching the residual by $\\gamma$ shrinks both noise scales by $\\gamma$.",
    "29": "Scaling the loss by $\\gamma$ shrinks only the prediction scale.",
    "30": "With $H_\\alpha \\approx D_{\\alpha,1/\\alpha}$ (eq. 25), eq. 28 carries over to the Huber loss.",
    "31": "Likewise eq. 29: a loss weight is a statement about the prediction noise.",
}


@functools.lru_cache(maxsize=None)
def derive_properties() -> tuple[Step, ...]:
    """Eqs. 28–31: the (α, β) of D after scaling its input or output by γ > 0, solved for, not assumed."""
    D = laplace_kl_loss_expr
    steps = []
    cases = (("28", r"D_{\alpha,\beta}(\gamma x)", D(gamma * x, alpha, beta), (alpha / gamma, beta / gamma)),
             ("29", r"\gamma D_{\alpha,\beta}(x)", gamma * D(x, alpha, beta), (alpha, beta / gamma)),
             # with H_α ≈ D_{α,1/α} (eq. 25)
             ("30", r"H_\alpha(\gamma x) \approx D_{\alpha,1/\alpha}(\gamma x)", D(gamma * x, alpha, 1 / alpha),
              (alpha / gamma, 1 / (alpha * gamma))),
             ("31", r"\gamma H_\alpha(x) \approx \gamma D_{\alpha,1/\alpha}(x)", gamma * D(x, alpha, 1 / alpha),
              (alpha, 1 / (alpha * gamma))))
    for eq, lhs, expr, claim in cases:
        found = loss_parameters(expr, x)
        steps.append(Step(eq, lhs + " = D_{" + tex(found[0]) + "," + tex(found[1]) + "}(x)",
                          sympy.Tuple(*found), all(is_zero(f - c) for f, c in zip(found, claim)),
                          "solved for the (a, b) with expr ≡ D_{a,b}(x)",
                          because=_WHY_SCALING[eq]))
    return tuple(steps)
