"""Appendix B in SymPy: D_{α,1/α} ≤ H_α ≤ D_{α/2,1/α} (eq. 27), Propositions 1 and 2, as chains of claims.

Each proof follows the paper: the gap is even, so x ≥ 0 suffices; on [0, α] and [α, ∞) it is one formula each
(eqs. 65–66, 72–73), rescaled to a function of one variable y (eqs. 67–68, 74–75); derivatives, endpoint values and
root counts are SymPy facts; every "so it is monotone", "so it keeps its sign", "Rolle" is a named lemma
(:mod:`labkit.symbolic.lemmas`) applied to cited claims, never a hand-written boolean. The formulas are typed as the
paper prints them and SymPy checks each against the one before. :func:`proposition_3` (tightness) lives in
:mod:`labkit.symbolic.tightness`; :func:`check_bounds_numerically` tests eq. 27 with :mod:`labkit.losses`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy
from sympy import LambertW, Rational, exp, log, oo

from labkit.symbolic import lemmas as L
from labkit.symbolic.claims import Claim, Proof, argument, numeric, symbolic
from labkit.symbolic.facts import Identity, Rescaled, Roots, Sign
from labkit.symbolic.kl import laplace_kl_loss_expr as D
from labkit.symbolic.series import huber_expr
from labkit.symbolic.steps import name_constant, printed as P

__all__ = ["proposition_1", "proposition_2", "check_bounds_numerically", "BoundsCheck", "numeric_claim",
           "even_claim", "x", "y", "alpha", "H", "H_INNER", "H_OUTER"]

x = sympy.Symbol("x", real=True)
y = sympy.Symbol("y", real=True)
alpha = sympy.Symbol("alpha", positive=True)
H = huber_expr(x, alpha)  # eq. 5
H_INNER, H_OUTER = x**2 / 2, alpha * (x - alpha / 2)  # eq. 5's pieces for x ≥ 0
NONNEG, REALS = sympy.Interval(0, oo), sympy.S.Reals


def _at(c) -> sympy.FiniteSet:
    return sympy.FiniteSet(c)


def even_claim(gap: sympy.Expr, name: str, section: str) -> Claim:
    """The gap is even: g(−x) − g(x) simplifies to 0 (|x| and x² do not see the sign)."""
    return symbolic(Identity(gap.subs(x, -x), gap, x, REALS, name=name),
                    "Both losses depend on $x$ only through $|x|$ and $x^2$, so $x \\ge 0$ is all we need to prove.",
                    statement=name.format("-x") + " = " + name.format("x"), section=section)


def _back_to_x(gap, name, even, pieces, section, eq) -> list[Claim]:
    """Lemma C on [0, α] and [α, ∞), Lemma U to join them, Lemma E to reflect: the gap ≥ 0 for every x."""
    out = []
    for (piece, reduced, sign), where in zip(pieces, (sympy.Interval(0, alpha), sympy.Interval(alpha, oo))):
        out.append(argument(L.CHANGE, Sign(gap, x, where, ">=", name), (piece, reduced, sign),
                            "Undo the substitution: a positive multiple of a non-negative function is non-negative.",
                            section=section))
    out.append(argument(L.CASES, Sign(gap, x, NONNEG, ">=", name), out[-2:],
                        "The two pieces meet at $x = \\alpha$ and together cover $x \\ge 0$.", section=section))
    out.append(argument(L.EVEN, Sign(gap, x, REALS, ">=", name), (even, out[-1]),
                        "Reflect through $x = 0$.", eq=eq, section=section))
    return out


@functools.lru_cache(maxsize=None)
def proposition_1() -> Proof:
    """H_α(x) − D_{α,1/α}(x) ≥ 0 for all x (eq. 64), via f₁ on [0, 1] and f₂ on [1, ∞) (eqs. 65–70)."""
    gap, name = H - D(x, alpha, 1 / alpha), r"H_\alpha({}) - D_{{\alpha,1/\alpha}}({})"
    name = name.replace("{}", "{0}")
    inner = P(x**2 / 2, -alpha * x, alpha**2, -alpha**2 * exp(-x / alpha))  # eq. 65 as printed
    outer = P(alpha**2 / 2, -alpha**2 * exp(-x / alpha))  # eq. 66
    f1, d1, dd1 = P(y**2 / 2, -y, 1, -exp(-y)), P(y, -1, exp(-y)), P(1, -exp(-y))  # eqs. 67, 69, 70
    f2 = P(Rational(1, 2), -exp(-y))  # eq. 68
    one = "Reduce to one variable"
    c = {}
    c["even"] = even_claim(gap, name, one)
    c[65] = symbolic(Identity(gap, inner, x, sympy.Interval(0, alpha), name), "On $[0, \\alpha]$ eq. 5 is "
                     "$\\tfrac12 x^2$; subtract eq. 19 with $|x| = x$.", "65", section=one)
    c[66] = symbolic(Identity(gap, outer, x, sympy.Interval(alpha, oo), name), "Beyond $\\alpha$ eq. 5 is "
                     "$\\alpha(x - \\tfrac12\\alpha)$; the linear terms cancel.", "66", section=one)
    c[67] = symbolic(Rescaled(inner, x, f1, y, alpha, alpha**2, "f_1({})"), "Substitute $y = x/\\alpha$ and divide "
                     "by $\\alpha^2$: the $\\alpha$s drop out, and $0 \\le x \\le \\alpha$ becomes $0 \\le y \\le 1$.",
                     "67", section=one)
    c[68] = symbolic(Rescaled(outer, x, f2, y, alpha, alpha**2, "f_2({})"), "The same substitution for "
                     "$x \\ge \\alpha$, i.e. $y \\ge 1$.", "68", section=one)
    two = "$f_1 \\ge 0$ on $[0, 1]$: a convex function that starts flat at 0"
    c[69] = symbolic(Identity(sympy.diff(f1, y), d1, y, name="f_1'({})"), "Differentiate (67).", "69", section=two)
    c[70] = symbolic(Identity(sympy.diff(d1, y), dd1, y, name="f_1''({})"), "Differentiate again.", "70", section=two)
    c["dd1>=0"] = symbolic(Sign(dd1, y, NONNEG, ">=", "f_1''({})"), "$e^{-y} \\le 1$ once $y \\ge 0$.", "",
                           section=two)
    c["d1(0)"] = symbolic(Sign(d1, y, _at(0), "=", "f_1'({})"), "Evaluate (69) at 0.", section=two)
    c["d1>=0"] = argument(L.MONOTONE, Sign(d1, y, NONNEG, ">=", "f_1'({})"), (c["d1(0)"], c["dd1>=0"]),
                          "$f_1'$ starts at 0 and never decreases.", "", uses=(c[70],), section=two)
    c["f1(0)"] = symbolic(Sign(f1, y, _at(0), "=", "f_1({})"), "Evaluate (67) at 0.", section=two)
    c["f1>=0"] = argument(L.MONOTONE, Sign(f1, y, sympy.Interval(0, 1), ">=", "f_1({})"), (c["f1(0)"], c["d1>=0"]),
                          "$f_1$ starts at 0 and never decreases either.", "⇒67", uses=(c[69],), section=two)
    three = "$f_2 \\ge 0$ on $[1, \\infty)$: it starts where $f_1$ ends, and rises"
    c["f2(1)"] = argument(L.RESTRICT, Sign(f2, y, _at(1), ">=", "f_2({})"), (c["f1>=0"],),
                          "At $y = 1$, $f_2(1) = f_1(1) = \\tfrac12 - e^{-1}$, which (67) says is $\\ge 0$: "
                          "$e^{-1} \\le \\tfrac12$.", "", section=three)
    c["d2>0"] = symbolic(Sign(sympy.diff(f2, y), y, sympy.Interval(1, oo), ">", "f_2'({})"),
                         "$f_2' = e^{-y} > 0$: $e^{-y}$ decreases, so $f_2$ increases.", section=three)
    c["f2>=0"] = argument(L.MONOTONE, Sign(f2, y, sympy.Interval(1, oo), ">=", "f_2({})"), (c["f2(1)"], c["d2>0"]),
                          "$f_2$ starts non-negative at 1 and rises.", "⇒68", section=three)
    pieces = ((c[65], c[67], c["f1>=0"]), (c[66], c[68], c["f2>=0"]))
    claims = list(c.values()) + _back_to_x(gap, name, c["even"], pieces, "Back to $x$", "⇒64")
    return Proof("Proposition 1", name.format("x") + r" \ge 0 \quad \text{for all } x", tuple(claims), "64",
                 "The lower bound of eq. 27: reduce to $x \\ge 0$, split at $x = \\alpha$, rescale to one variable, "
                 "and argue with derivatives.")


@functools.lru_cache(maxsize=None)
def proposition_2() -> Proof:
    """D_{α/2,1/α}(x) − H_α(x) ≥ 0 for all x (eq. 71), via f₃ on [0, 2], f₄ and f₅ (eqs. 72–80)."""
    gap, name = D(x, alpha / 2, 1 / alpha) - H, r"D_{{\alpha/2,1/\alpha}}({0}) - H_\alpha({0})"
    inner = P(alpha**2 / 2 * exp(-2 * x / alpha), alpha * x, -alpha**2 / 2, -x**2 / 2)  # eq. 72 as printed
    outer = alpha**2 / 2 * exp(-2 * x / alpha)  # eq. 73
    f3, f4 = P(exp(-y), y, -1, -y**2 / 4), exp(-y)  # eqs. 74, 75
    d3, dd3 = P(-exp(-y), 1, -y / 2), P(exp(-y), -Rational(1, 2))  # eqs. 76, 77
    f5 = P(-y**2 / 4, y / 2)  # eq. 80
    y0 = name_constant(2 + LambertW(-2 * exp(-2)), "y_0")
    c = {}
    one = "Reduce to one variable"
    c["even"] = even_claim(gap, name, one)
    c[72] = symbolic(Identity(gap, inner, x, sympy.Interval(0, alpha), name), "On $[0, \\alpha]$: eq. 19 with "
                     "$(\\alpha/2, 1/\\alpha)$ minus $\\tfrac12 x^2$.", "72", section=one)
    c[73] = symbolic(Identity(gap, outer, x, sympy.Interval(alpha, oo), name), "Beyond $\\alpha$ only the "
                     "exponential is left.", "73", section=one)
    c[74] = symbolic(Rescaled(inner, x, f3, y, alpha / 2, alpha**2 / 2, "f_3({})"), "Substitute $y = 2x/\\alpha$ "
                     "and divide by $\\alpha^2/2$; $0 \\le x \\le \\alpha$ becomes $0 \\le y \\le 2$.", "74",
                     section=one)
    c[75] = symbolic(Rescaled(outer, x, f4, y, alpha / 2, alpha**2 / 2, "f_4({})"), "The same for $y \\ge 2$.",
                     "75", section=one)
    c["f4>0"] = symbolic(Sign(f4, y, REALS, ">", "f_4({})"), "An exponential is positive.", "⇒75", section=one)
    two = "$f_3'$ has exactly two roots, $0$ and $y_0$"
    c[76] = symbolic(Identity(sympy.diff(f3, y), d3, y, name="f_3'({})"), "Differentiate (74).", "76", section=two)
    c[77] = symbolic(Identity(sympy.diff(d3, y), dd3, y, name="f_3''({})"), "Differentiate again.", "77", section=two)
    c["d3(0)"] = symbolic(Sign(d3, y, _at(0), "=", "f_3'({})"), "Evaluate (76) at 0.", section=two)
    c["d3(1)"] = symbolic(Sign(d3, y, _at(1), ">", "f_3'({})"), "A point where $f_3'$ is positive (the paper reads "
                          "the same sign off $f_3''(0) = \\tfrac12 > 0$).", section=two)
    c["d3(2)"] = symbolic(Sign(d3, y, _at(2), "<", "f_3'({})"), "At the right end $f_3'$ is negative.", section=two)
    c["roots dd3"] = symbolic(Roots(dd3, y, REALS, (log(2),), "f_3''({})"), "$e^{-y} = \\tfrac12$ has one real "
                              "solution; SymPy's solveset finds all of them.", "", section=two)
    c["d3(y0)"] = symbolic(Sign(d3, y, _at(y0), "=", "f_3'({})"), statement=r"f_3'(y_0) = 0 \quad \text{at } "
                           r"y_0 = 2 + W(-2e^{-2}) \approx 1.594", because="SymPy's solve writes the second root with "
                           "Lambert's $W$ ($W e^W = z$): $y_0 = 2 + W(-2e^{-2}) \\approx 1.594$. solveset cannot "
                           "count the roots of $f_3'$ on $[0, 2]$ itself (it returns a ConditionSet), so Rolle does.",
                           section=two)
    c["roots d3"] = argument(L.ROLLE, Roots(d3, y, REALS, (0, y0), "f_3'({})"),
                             (c["roots dd3"], c["d3(0)"], c["d3(y0)"]),
                             "$f_3''$ has one root, so $f_3'$ has at most two — and we have two.", "", section=two)
    three = "$f_3 \\ge 0$ on $[0, y_0]$: it starts at 0 and rises"
    c["d3>=0"] = argument(L.NO_SIGN_CHANGE, Sign(d3, y, sympy.Interval(0, y0), ">=", "f_3'({})"),
                          (c["roots d3"], c["d3(1)"]), "No root of $f_3'$ lies between 0 and $y_0$, and it is "
                          "positive at 1.", "", section=three)
    c["f3(0)"] = symbolic(Sign(f3, y, _at(0), "=", "f_3({})"), "Evaluate (74) at 0.", section=three)
    c["f3 left"] = argument(L.MONOTONE, Sign(f3, y, sympy.Interval(0, y0), ">=", "f_3({})"), (c["f3(0)"], c["d3>=0"]),
                            "$f_3$ starts at 0 and does not decrease up to $y_0$.", "", uses=(c[76],), section=three)
    four = "$f_3 \\ge 0$ on $[y_0, 2]$: it stays above the parabola $f_5$"
    c[78] = argument(L.NO_SIGN_CHANGE, Sign(d3, y, sympy.Interval(y0, 2), "<=", "f_3'({})"), (c["roots d3"], c["d3(2)"]),
                     "No root of $f_3'$ lies between $y_0$ and 2, and it is negative at 2: so $e^{-y} \\ge 1 - "
                     "\\tfrac12 y$ there.", "78", section=four)
    c[79] = symbolic(Identity(f3 - f5, P(exp(-y), sympy.Mul(-1, P(1, -y / 2), evaluate=False)), y,
                              name="f_3({0}) - f_5({0})"), "Replacing $e^{-y}$ in $f_3$ by the "
                     "smaller $1 - \\tfrac12 y$ leaves $f_5$; what was dropped is exactly $-f_3'$.", "", section=four)
    c[80] = symbolic(Identity(P(1, -y / 2) - P(1, -y, y**2 / 4), f5, y), "So (79), "
                     "$1 - \\tfrac12 y \\ge 1 - y + \\tfrac14 y^2$, is what is left to show: it says $f_5 \\ge 0$.",
                     "79–80", section=four, statement=r"\big(1 - \tfrac12 y\big) - \big(1 - y + \tfrac14 y^2\big) = "
                                                      r"f_5(y) = -\tfrac14 y^2 + \tfrac12 y")
    c["roots f5"] = symbolic(Roots(f5, y, REALS, (0, 2), "f_5({})"), "A polynomial: SymPy counts its real roots "
                             "exactly (real_roots, and a Sturm sequence).", "", section=four)
    c["f5(1)"] = symbolic(Sign(f5, y, _at(1), ">", "f_5({})"), "Between its roots the parabola is positive.", "",
                          section=four)
    c["f5>=0"] = argument(L.NO_SIGN_CHANGE, Sign(f5, y, sympy.Interval(0, 2), ">=", "f_5({})"),
                          (c["roots f5"], c["f5(1)"]), "No root inside $(0, 2)$, positive at 1.", "⇒80", uses=(c[80],),
                          section=four)
    c["f3 right"] = argument(L.SUM, Sign(f3, y, sympy.Interval(y0, 2), ">=", "f_3({})"), (c[78], c["f5>=0"]),
                             "$f_3 = (f_3 - f_5) + f_5 = -f_3' + f_5$, a sum of two non-negative terms.", "",
                             uses=(c[79],), section=four)
    c["f3>=0"] = argument(L.CASES, Sign(f3, y, sympy.Interval(0, 2), ">=", "f_3({})"), (c["f3 left"], c["f3 right"]),
                          "$[0, y_0]$ and $[y_0, 2]$ make up $[0, 2]$.", "⇒74", section=four)
    pieces = ((c[72], c[74], c["f3>=0"]), (c[73], c[75], c["f4>0"]))
    claims = list(c.values()) + _back_to_x(gap, name, c["even"], pieces, "Back to $x$", "⇒71")
    return Proof("Proposition 2", name.format("x") + r" \ge 0 \quad \text{for all } x", tuple(claims), "71",
                 "The upper bound of eq. 27: the same reduction; the new difficulty is that $f_3'$ changes sign "
                 "once, at $y_0$.")


@dataclass(frozen=True)
class BoundsCheck:
    """Eq. 27 tested at ``n`` random (x, α): margins H − D_{α,1/α} and D_{α/2,1/α} − H relative to H + α² (the size
    of the rounding error), the smallest of each and the x/α where it occurs, and how many points broke a bound by
    more than ``tol`` (16 float64 ulp)."""

    n: int
    violations: int
    min_lower_margin: float
    min_upper_margin: float
    lower_at: float = 0.0
    upper_at: float = 0.0
    tol: float = 16 * np.finfo(np.float64).eps

    def sentence(self) -> str:
        """The result as sentences a student can read (math in $…$)."""
        return (f"{self.violations:,} violations at {self.n:,} random points (a violation would be a bound broken by "
                f"more than 16 float64 rounding units). Closest approach of the lower bound: "
                f"{self._where(self.min_lower_margin, self.lower_at, _HALF_ALPHA_SQUARED)}; of the upper bound: "
                f"{self._where(self.min_upper_margin, self.upper_at, '0 (eq. 85)')}.")

    def _where(self, margin: float, ratio: float, far: str) -> str:
        shown = (f"{ratio:.3g}" if 1e-3 <= abs(ratio) < 100 else f"{ratio:.0f}" if 100 <= abs(ratio) < 1e6
                 else _sci(ratio))
        place = ("next to $x = 0$, where both losses are 0" if abs(ratio) < 1e-2 else
                 f"far out, where the gap tends to {far}" if abs(ratio) > 10 else "")
        at = f"at $x/\\alpha = {shown}$" + (f", {place}" if place else "")
        if abs(margin) <= self.tol:
            return f"{at} — equal up to float64 rounding (margin ${_sci(margin)}$ of the loss)"
        return f"{at} (margin ${_sci(margin)}$ of the loss)"


_HALF_ALPHA_SQUARED = r"$\alpha^2/2$ (eq. 86)"


def _sci(v: float) -> str:
    if v == 0:
        return "0"
    mantissa, exponent = f"{v:.1e}".split("e")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}"


def check_bounds_numerically(n: int = 10**6, seed: int = 0) -> BoundsCheck:
    """D_{α,1/α}(x) ≤ H_α(x) ≤ D_{α/2,1/α}(x) (eq. 27) with :mod:`labkit.losses` in float64 at ``n`` random points:
    α log-uniform on [1e-3, 1e3], x/α uniform on [−4, 4] for half the points and ±log-uniform up to 1e4 for the rest.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got n={n!r}")
    from labkit import losses  # imported here: torch costs seconds, and only this check needs it

    rng = np.random.default_rng(seed)
    a = 10.0 ** rng.uniform(-3, 3, n)
    half = n // 2
    ratio = np.concatenate([rng.uniform(-4, 4, half),
                            rng.choice([-1.0, 1.0], n - half) * 10.0 ** rng.uniform(-1, 4, n - half)])
    xs = ratio * a
    h = losses.huber(xs, a)
    scale = h + a * a
    lower = (h - losses.laplace_kl_loss(xs, a, 1 / a)) / scale
    upper = (losses.laplace_kl_loss(xs, a / 2, 1 / a) - h) / scale
    tol = 16 * np.finfo(np.float64).eps
    violations = int(np.count_nonzero((lower < -tol) | (upper < -tol)))
    i, j = int(lower.argmin()), int(upper.argmin())
    return BoundsCheck(n, violations, float(lower[i]), float(upper[j]), float(ratio[i]), float(ratio[j]), tol)


def numeric_claim(n: int = 10**6, seed: int = 0) -> Claim:
    """Eq. 27 as a numeric :class:`~labkit.symbolic.claims.Claim` backed by :func:`check_bounds_numerically`."""
    check = check_bounds_numerically(n, seed)
    return numeric(r"D_{\alpha,1/\alpha}(x) \le H_\alpha(x) \le D_{\alpha/2,1/\alpha}(x)",
                   "The float64 losses of labkit.losses, at random $(x, \\alpha)$ with $\\alpha$ over six decades "
                   "and $|x|$ up to $10^4\\alpha$, must agree with what Propositions 1 and 2 proved; margins are "
                   "relative to $H_\\alpha + \\alpha^2$, the size of the rounding error.",
                   check.violations == 0, check.sentence(), n, "27")
