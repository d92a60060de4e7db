"""Appendix B in SymPy: Proposition 3 — no other D_{α*,β*} fits between D_{α,1/α} and D_{α/2,1/α} around H_α.

The argument has two halves, as in the paper. Far out (x → ∞) the gap D_{α*,β*} − H_α runs off to ±∞ unless
β* = 1/α, and then tends to α(α/2 − α*) (eqs. 83–87); since limits keep order, the upper bound must be α₂ = α/2 and
the lower one α/2 ≤ α₁ ≤ α. Near 0, writing α₁ = α/γ with γ > 1 (every α₁ < α), the reduced gap f₆ (eq. 90) is
positive just right of 0, so D_{α₁,1/α} pokes above H_α and breaks eq. 81: only α₁ = α is left. We stop f₆'s
positive stretch at log γ (where f₆″ changes sign) rather than at the paper's root y₀ of f₆′, which lies beyond;
that needs no root of a transcendental equation, only log γ < γ, itself shown with the same lemma.
"""
from __future__ import annotations

import functools

import sympy
from sympy import Rational, exp, log, oo

from labkit.symbolic import lemmas as L
from labkit.symbolic.bounds import H, REALS, alpha, proposition_1, proposition_2, x, y
from labkit.symbolic.claims import Proof, argument, symbolic
from labkit.symbolic.facts import Allowed, Identity, Limit, Rescaled, Roots, Sign
from labkit.symbolic.kl import laplace_kl_loss_expr as D
from labkit.symbolic.steps import printed as P

__all__ = ["proposition_3", "proofs", "k", "gamma"]

k = sympy.Symbol("k", positive=True)  # α* = kα
gamma, g = sympy.symbols("gamma g", positive=True)
GAMMA_ABOVE_1 = ((gamma, 1 + g),)  # γ > 1, i.e. α₁ = α/γ < α; SymPy's assumptions cannot say "> 1" directly
a_s, b_s, eps, a1 = sympy.symbols("alpha_s beta_s epsilon alpha_1", positive=True)
FAMILY = D(x, a_s, b_s) - H  # the gap for any (α*, β*)
LIMIT_NAME = r"\big(D_{\alpha_*,\beta_*}(x) - H_\alpha(x)\big)"


def _allowed(values, lower, upper, statement) -> Allowed:
    return Allowed(k, values, FAMILY, lower, upper, r"\beta_* = 1/\alpha", ((b_s, 1 / alpha), (a_s, k * alpha)),
                   statement)


@functools.lru_cache(maxsize=None)
def proposition_3() -> Proof:
    """The bounds are tight (eqs. 81–92): only α₁ = α, α₂ = α/2, β₁ = β₂ = 1/α keep eqs. 81–82 for every x."""
    upper_gap, lower_gap = D(x, alpha / 2, 1 / alpha) - H, D(x, alpha, 1 / alpha) - H
    c = {}
    far = "Far out: the limits (eqs. 83–87)"
    c[84] = symbolic(Identity(FAMILY, P((a_s * exp(-x / a_s) + x - a_s) / b_s, -alpha * P(x, -alpha / 2)), x,
                              sympy.Interval(alpha, oo), r"D_{{\alpha_*,\beta_*}}({0}) - H_\alpha({0})"),
                     "Eqs. 83–84 subtract $H_\\alpha$ throughout; beyond $\\alpha$ both losses are explicit.", "83–84",
                     section=far)
    c[85] = symbolic(Limit(upper_gap, x, (("", (), 0),), r"\big(D_{\alpha/2,1/\alpha}(x) - H_\alpha(x)\big)"),
                     "The exponential dies and the linear parts are equal.", "85", uses=(c[84],), section=far)
    c[86] = symbolic(Limit(lower_gap, x, (("", (), -alpha**2 / 2),), r"\big(D_{\alpha,1/\alpha}(x) - H_\alpha(x)\big)"),
                     "Same slope, but an offset of $-\\alpha^2/2$.", "86", uses=(c[84],), section=far)
    cases = ((r"\beta_* < 1/\alpha", ((b_s, 1 / (alpha + eps)),), oo),
             (r"\beta_* = 1/\alpha", ((b_s, 1 / alpha),), alpha * (alpha / 2 - a_s)),
             (r"\beta_* > 1/\alpha", ((b_s, 1 / alpha + eps),), -oo))
    c[87] = symbolic(Limit(FAMILY, x, cases, LIMIT_NAME), "The slope $1/\\beta_*$ of D against the slope $\\alpha$ "
                     "of H decides; SymPy takes each case with $\\varepsilon > 0$ standing for the difference.", "87",
                     uses=(c[84],), section=far)
    allow = "What the limits allow"
    c["upper"] = argument(L.LIMITS, _allowed(sympy.FiniteSet(Rational(1, 2)), sympy.Integer(0), upper_gap,
                                             r"\beta_2 = 1/\alpha,\ \alpha_2 = \alpha/2"), (c[85], c[87]),
                          "Eq. 84 squeezes $D_{\\alpha_2,\\beta_2} - H_\\alpha$ between 0 and a gap that tends to 0 "
                          "(eq. 85): only $\\beta_* = 1/\\alpha$ with $\\alpha(\\alpha/2 - \\alpha_2) = 0$ survives.",
                          section=allow)
    c["band"] = argument(L.LIMITS, _allowed(sympy.Interval(Rational(1, 2), 1), lower_gap, sympy.Integer(0),
                                            r"\beta_1 = 1/\alpha,\ \tfrac{\alpha}{2} \le \alpha_1 \le \alpha"),
                         (c[86], c[87]), "Eq. 83 keeps the limit between $-\\alpha^2/2$ (eq. 86) and 0.",
                         section=allow)
    near = "Near 0: the reduced gap $f_6$ (eqs. 88–92)"
    f6, d6 = P(exp(-y), y, -1, -y**2 / (2 * gamma)), P(-exp(-y), 1, -y / gamma)  # eqs. 90, 91
    dd6 = P(exp(-y), -1 / gamma)  # eq. 92
    near_gap = P(alpha * P(a1 * exp(-x / a1), x, -a1), -x**2 / 2)  # eq. 89 as printed
    c[89] = symbolic(Identity(D(x, a1, 1 / alpha) - H, near_gap, x, sympy.Interval(0, alpha),
                              r"D_{{\alpha_1,1/\alpha}}({0}) - H_\alpha({0})"),
                     "On $[0, \\alpha]$, with $\\beta_1 = 1/\\alpha$ as the limits demand.", "88–89", section=near)
    c[90] = symbolic(Rescaled(near_gap, x, f6, y, alpha / gamma, alpha**2 / gamma, "f_6({})", ((a1, alpha / gamma),),
                              GAMMA_ABOVE_1), "Set $\\alpha_1 = \\alpha/\\gamma$ ($\\gamma > 1$ is every "
                     "$\\alpha_1 < \\alpha$), substitute $y = \\gamma x/\\alpha$, divide by $\\alpha^2/\\gamma$.",
                     "90", section=near)
    c[91] = symbolic(Identity(sympy.diff(f6, y), d6, y, name="f_6'({})"), "Differentiate (90).", "91", section=near)
    c[92] = symbolic(Identity(sympy.diff(d6, y), dd6, y, name="f_6''({})"), "Differentiate again.", "92",
                     section=near)
    c["d6(0)"] = symbolic(Sign(d6, y, sympy.FiniteSet(0), "=", "f_6'({})"), "Evaluate (91) at 0.", section=near)
    c["dd6(0)"] = symbolic(Sign(dd6, y, sympy.FiniteSet(0), ">", "f_6''({})", GAMMA_ABOVE_1),
                           "Positive exactly because $\\gamma > 1$.", "", section=near,
                           statement=r"f_6''(0) = 1 - \frac{1}{\gamma} > 0 \quad (\gamma > 1)")
    c["roots dd6"] = symbolic(Roots(dd6, y, REALS, (log(gamma),), "f_6''({})", GAMMA_ABOVE_1),
                              "$e^{-y} = 1/\\gamma$ has the one real solution $\\log\\gamma$ (so $f_6'$ has at most "
                              "two roots, as the paper notes).", "", section=near)
    c["dd6>0"] = argument(L.NO_SIGN_CHANGE, Sign(dd6, y, sympy.Interval.Ropen(0, log(gamma)), ">", "f_6''({})",
                                                 GAMMA_ABOVE_1), (c["roots dd6"], c["dd6(0)"]),
                          "No root before $\\log\\gamma$, positive at 0.", section=near)
    c["d6>0"] = argument(L.MONOTONE, Sign(d6, y, sympy.Interval.Lopen(0, log(gamma)), ">", "f_6'({})",
                                          GAMMA_ABOVE_1), (c["d6(0)"], c["dd6>0"]),
                         "$f_6'$ starts at 0 and strictly rises up to $\\log\\gamma$ (the paper continues to the "
                         "root $y_0$ of $f_6'$; $\\log\\gamma$ is enough here).", "", uses=(c[92],), section=near)
    c["f6(0)"] = symbolic(Sign(f6, y, sympy.FiniteSet(0), "=", "f_6({})"), "Evaluate (90) at 0.", section=near)
    c["f6>0"] = argument(L.MONOTONE, Sign(f6, y, sympy.Interval.Lopen(0, log(gamma)), ">", "f_6({})", GAMMA_ABOVE_1),
                         (c["f6(0)"], c["d6>0"]), "$f_6$ starts at 0 and strictly rises.", "⇒90", uses=(c[91],),
                         section=near)
    aside = "An aside: $\\log\\gamma < \\gamma$, so the point found lies in $[0, \\alpha]$"
    h = gamma - log(gamma)
    c["h(1)"] = symbolic(Sign(h, gamma, sympy.FiniteSet(1), ">", r"h({})"), "Write $h(\\gamma) = \\gamma - "
                         "\\log\\gamma$; at $\\gamma = 1$ it is 1.", section=aside)
    c["h'"] = symbolic(Sign(sympy.diff(h, gamma), gamma, sympy.Interval(1, oo), ">=", r"h'({})"),
                       "$h'(\\gamma) = 1 - 1/\\gamma$.", section=aside)
    c["h>0"] = argument(L.MONOTONE, Sign(h, gamma, sympy.Interval(1, oo), ">", r"h({})"), (c["h(1)"], c["h'"]),
                        "$h$ starts positive and does not decrease: $\\log\\gamma < \\gamma$.", section=aside)
    last = "The counterexample"
    witness = Sign(D(x, alpha / gamma, 1 / alpha) - H, x, sympy.FiniteSet(alpha * log(gamma) / gamma), ">",
                   given=GAMMA_ABOVE_1)
    c[88] = argument(L.CHANGE, witness, (c[89], c[90], c["f6>0"], c["h>0"]),
                     "Undo the substitution at $y = \\log\\gamma$: there the gap is $\\tfrac{\\alpha^2}{\\gamma}"
                     "f_6(\\log\\gamma) > 0$.", "⇒88", section=last,
                     statement=r"D_{\alpha/\gamma,1/\alpha}(x^*) - H_\alpha(x^*) > 0 \quad \text{at } x^* = "
                               r"\frac{\alpha\log\gamma}{\gamma} \in (0, \alpha),\ \gamma > 1")
    c["alpha1"] = argument(L.COUNTEREXAMPLE, _allowed(sympy.FiniteSet(1), lower_gap, sympy.Integer(0),
                                                      r"\alpha_1 = \alpha"), (c["band"], c[88]),
                           "Every $\\alpha_1 = \\alpha/\\gamma < \\alpha$ breaks eq. 81 at $x^*$ (including "
                           "$\\alpha/2$, where $\\gamma = 2$); of $[\\alpha/2, \\alpha]$ only $\\alpha$ is left.",
                           "⇒81–82", section=last)
    return Proof("Proposition 3", r"D_{\alpha,1/\alpha} \le D_{\alpha_1,\beta_1} \le H_\alpha \le D_{\alpha_2,\beta_2}"
                 r" \le D_{\alpha/2,1/\alpha} \text{ for all } x \iff \alpha_1 = \alpha,\ \alpha_2 = \tfrac{\alpha}{2},"
                 r"\ \beta_1 = \beta_2 = \tfrac{1}{\alpha}", tuple(c.values()), "81–82",
                 "The bounds are tight: the limits at infinity fix $\\beta$ and $\\alpha_2$ and confine $\\alpha_1$; "
                 "a point near 0 rules out every $\\alpha_1 < \\alpha$. The claim on $\\alpha_2$ and the last claim together "
                 "are the statement.")


def proofs() -> tuple[Proof, ...]:
    """Propositions 1–3 in the paper's order."""
    return proposition_1(), proposition_2(), proposition_3()
