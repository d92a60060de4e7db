"""Appendix B in SymPy: D_{α,1/α} ≤ H_α ≤ D_{α/2,1/α} (eq. 27) and that no tighter D bounds H_α (Propositions 1–3).

Each proposition is reduced the way the paper does it (y = x/α, y = 2x/α, α₁ = α/γ with y = γx/α) to one-variable
functions f₁…f₆; every fact the argument uses — the reduction itself, derivatives, endpoint values, the sign of a
second derivative on an interval (``solveset`` of the opposite inequality is empty), the roots, the limits — is a
:class:`Step` computed by SymPy. Monotonicity arguments ("f' ≥ 0 and f(a) = 0, so f ≥ 0") are checked as
f(y) = f(a) + ∫ₐʸ f'(t) dt with the sign of f' established by an earlier step. Because H_α and D are even, x ≥ 0
suffices throughout. :func:`check_bounds_numerically` tests eq. 27 with :mod:`labkit.losses` at random points.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy
from sympy import exp, log

from labkit.symbolic.kl import laplace_kl_loss_expr as D
from labkit.symbolic.series import huber_expr
from labkit.symbolic.steps import Step, is_zero, tex

__all__ = ["proposition_1", "proposition_2", "proposition_3", "check_bounds_numerically", "BoundsCheck",
           "all_steps", "numeric_step"]

x = sympy.Symbol("x", positive=True)
alpha, gamma = sympy.symbols("alpha gamma", positive=True)
y = sympy.Symbol("y", positive=True)
t = sympy.Symbol("t", positive=True)
# H_α on x ≥ 0, read off eq. 5's two pieces: ½x² on [0, α], α(x − α/2) beyond
H_INNER, H_OUTER = (piece for piece, _ in huber_expr(x, alpha).args)


def _empty(condition, interval: sympy.Interval) -> bool:
    """True when SymPy finds no y in ``interval`` where ``condition`` holds (used for the sign of f on an interval)."""
    return sympy.solveset(condition, y, interval) == sympy.S.EmptySet


def _integrated(f: sympy.Expr, start) -> bool:
    """f(y) = f(start) + ∫_start^y f'(t) dt — the identity behind 'f' has a sign, hence f is monotone'."""
    return is_zero(f - f.subs(y, start) - sympy.integrate(sympy.diff(f, y).subs(y, t), (t, start, y)))


def _reduction(eq: str, name: str, expr: sympy.Expr, sub: sympy.Expr, divide: sympy.Expr, claim: sympy.Expr,
               how: str) -> tuple[Step, sympy.Expr]:
    f = sympy.expand(sympy.simplify(expr.subs(x, sub) / divide))
    return Step(eq, name + "(y) = " + tex(claim), f, is_zero(f - claim), how), f


def _derivative(eq: str, name: str, f: sympy.Expr, order: int, claim: sympy.Expr) -> tuple[Step, sympy.Expr]:
    d = sympy.diff(f, y, order)
    return Step(eq, name + "'" * order + "(y) = " + tex(claim), d, is_zero(d - claim), "sympy.diff"), d


def _value(eq: str, text: str, expr: sympy.Expr, at, expected, relation: str = "=") -> Step:
    v = sympy.simplify(expr.subs(y, at))
    held = {"=": lambda: is_zero(v - expected), ">": lambda: bool(v > expected), "<": lambda: bool(v < expected)}
    shown = text + (" = " + tex(v) if relation != "=" else "") + " " + relation + " " + tex(sympy.sympify(expected))
    return Step(eq, shown, v, held[relation](), f"evaluated: {v}")


def _proposition(eq: str, statement: str, steps: list[Step]) -> tuple[Step, ...]:
    """The proposition first, held exactly when every step of its proof held."""
    return (Step(eq, statement, sympy.Integer(sum(s.held for s in steps)), all(s.held for s in steps),
                 f"all {len(steps)} steps below"),) + tuple(steps)


@functools.lru_cache(maxsize=None)
def proposition_1() -> tuple[Step, ...]:
    """H_α(x) − D_{α,1/α}(x) ≥ 0 (eq. 64), via f₁ on [0, 1] and f₂ on [1, ∞) (eqs. 65–70)."""
    lower = D(x, alpha, 1 / alpha)
    inner, outer = sympy.expand(H_INNER - lower), sympy.expand(H_OUTER - lower)
    s = [Step("65", r"0 \le x \le \alpha:\ H_\alpha - D_{\alpha,1/\alpha} = " + tex(inner), inner,
              is_zero(inner - (x**2 / 2 - alpha * x + alpha**2 - alpha**2 * exp(-x / alpha))), "eq. 5 − eq. 19"),
         Step("66", r"x \ge \alpha:\ H_\alpha - D_{\alpha,1/\alpha} = " + tex(outer), outer,
              is_zero(outer - (alpha**2 / 2 - alpha**2 * exp(-x / alpha))), "eq. 5 − eq. 19")]
    step, f1 = _reduction("67", "f_1", inner, alpha * y, alpha**2, y**2 / 2 - y + 1 - exp(-y), "y = x/α, ÷ α²")
    s.append(step)
    step, f2 = _reduction("68", "f_2", outer, alpha * y, alpha**2, sympy.Rational(1, 2) - exp(-y), "y = x/α, ÷ α²")
    s.append(step)
    step, d1 = _derivative("69", "f_1", f1, 1, y - 1 + exp(-y))
    s.append(step)
    step, dd1 = _derivative("70", "f_1", f1, 2, 1 - exp(-y))
    s.append(step)
    convex = _empty(dd1 < 0, sympy.Interval(0, sympy.oo))
    s.append(Step("70", r"f_1''(y) \ge 0 \text{ for } y \ge 0", dd1, convex, "solveset(f₁'' < 0, y ≥ 0) = ∅"))
    s.append(_value("69", "f_1'(0)", d1, 0, 0))
    s.append(_value("67", "f_1(0)", f1, 0, 0))
    s.append(Step("69", r"f_1'(y) \ge 0 \text{ for } y \ge 0", d1, convex and _integrated(d1, 0),
                  "f₁'(y) = f₁'(0) + ∫₀ʸ f₁'' with f₁'' ≥ 0"))
    s.append(Step("67", r"f_1(y) \ge 0 \text{ for } 0 \le y \le 1", f1, s[-1].held and _integrated(f1, 0),
                  "f₁(y) = f₁(0) + ∫₀ʸ f₁' with f₁' ≥ 0"))
    s.append(Step("68", r"f_2(1) = f_1(1) \ge 0,\ \text{i.e. } e^{-1} \le \tfrac12", f2.subs(y, 1),
                  is_zero(f2.subs(y, 1) - f1.subs(y, 1)) and s[-1].held, "f₂(1) and f₁(1) are the same number"))
    rising = sympy.diff(f2, y)
    s.append(Step("68", r"f_2(y) \ge f_2(1) \ge 0 \text{ for } y \ge 1", rising,
                  bool(rising.is_positive) and _integrated(f2, 1) and s[-1].held,
                  "f₂' = e^{−y} > 0 (e^{−y} decreases), so f₂ increases from f₂(1) ≥ 0"))
    return _proposition("64", r"H_\alpha(x) - D_{\alpha,1/\alpha}(x) \ge 0", s)


@functools.lru_cache(maxsize=None)
def proposition_2() -> tuple[Step, ...]:
    """D_{α/2,1/α}(x) − H_α(x) ≥ 0 (eq. 71), via f₃ on [0, 2], f₄, f₅ (eqs. 72–80) and the root y₀ of f₃'."""
    upper = D(x, alpha / 2, 1 / alpha)
    inner, outer = sympy.expand(upper - H_INNER), sympy.expand(upper - H_OUTER)
    s = [Step("72", r"0 \le x \le \alpha:\ D_{\alpha/2,1/\alpha} - H_\alpha = " + tex(inner), inner,
              is_zero(inner - (alpha**2 / 2 * exp(-2 * x / alpha) + alpha * x - alpha**2 / 2 - x**2 / 2)),
              "eq. 19 − eq. 5"),
         Step("73", r"x \ge \alpha:\ D_{\alpha/2,1/\alpha} - H_\alpha = " + tex(outer), outer,
              is_zero(outer - alpha**2 / 2 * exp(-2 * x / alpha)), "eq. 19 − eq. 5")]
    step, f3 = _reduction("74", "f_3", inner, alpha * y / 2, alpha**2 / 2, exp(-y) + y - 1 - y**2 / 4,
                          "y = 2x/α, ÷ α²/2")
    s.append(step)
    step, f4 = _reduction("75", "f_4", outer, alpha * y / 2, alpha**2 / 2, exp(-y), "y = 2x/α, ÷ α²/2")
    s.append(step)
    s.append(Step("75", r"f_4(y) > 0", f4, bool(f4.is_positive), "the exponential is positive"))
    step, d3 = _derivative("76", "f_3", f3, 1, -exp(-y) + 1 - y / 2)
    s.append(step)
    step, dd3 = _derivative("77", "f_3", f3, 2, exp(-y) - sympy.Rational(1, 2))
    s.append(step)
    s.append(_value("76", "f_3'(0)", d3, 0, 0))
    s.append(_value("77", "f_3''(0)", dd3, 0, 0, ">"))
    s.append(_value("76", "f_3'(2)", d3, 2, 0, "<"))
    y_real = sympy.Symbol("y", real=True)
    turn = sympy.solveset(dd3.subs(y, y_real), y_real, sympy.S.Reals)
    s.append(Step("77", r"f_3''(y) = 0 \iff y \in " + tex(turn), turn, turn == sympy.FiniteSet(log(2)),
                  "solveset over the reals: a single root, so f₃' has at most two (Rolle)"))
    y0, root_step = _single_interior_root("76", "f_3", d3, 2)
    s.append(root_step)
    ln2 = log(2)
    rising = _empty(dd3 < 0, sympy.Interval(0, ln2))
    falling = _empty(dd3 > 0, sympy.Interval(ln2, sympy.oo))
    s.append(Step("76", r"f_3'(y) \ge 0 \text{ for } 0 \le y \le y_0", sympy.Tuple(y0, ln2),
                  rising and falling and bool(y0 > ln2) and s[-1].held,
                  "f₃'' ≥ 0 on [0, log 2] from f₃'(0) = 0, f₃'' ≤ 0 on [log 2, y₀] down to f₃'(y₀) = 0"))
    s.append(Step("74", r"f_3(y) \ge 0 \text{ for } 0 \le y \le y_0", f3.subs(y, 0),
                  s[-1].held and f3.subs(y, 0) == 0 and _integrated(f3, 0), "f₃(0) = 0 and f₃' ≥ 0"))
    s.append(Step("78", r"f_3'(y) \le 0 \iff e^{-y} \ge 1 - \tfrac12 y \text{ for } y_0 \le y \le 2",
                  d3 + (exp(-y) - (1 - y / 2)), falling and is_zero(d3 + (exp(-y) - (1 - y / 2))) and root_step.held,
                  "f₃'(y₀) = 0 and f₃'' ≤ 0 beyond log 2 < y₀"))
    f5 = sympy.expand((1 - y / 2) - (1 - y + y**2 / 4))
    s.append(Step("79", r"f_3(y) - \big[(1 - \tfrac12 y) - (1 - y + \tfrac14 y^2)\big] = -f_3'(y) \ge 0",
                  f3 - f5 + d3, is_zero(f3 - f5 + d3) and s[-1].held, "so f₃ ≥ f₅ on [y₀, 2]"))
    s.append(Step("80", r"f_5(y) = " + tex(f5), f5, is_zero(f5 - (-y**2 / 4 + y / 2)), "eq. 79 rearranged"))
    roots = sympy.solveset(f5.subs(y, y_real), y_real, sympy.S.Reals)
    s.append(Step("80", r"f_5(y) = 0 \iff y \in " + tex(roots) + r",\ f_5(1) = " + tex(f5.subs(y, 1)),
                  sympy.Tuple(roots, f5.subs(y, 1)),
                  roots == sympy.FiniteSet(0, 2) and f5.subs(y, 1) > 0 and _empty(f5 < 0, sympy.Interval(0, 2)),
                  "roots 0 and 2, positive between; solveset(f₅ < 0, [0, 2]) = ∅"))
    s.append(Step("74", r"f_3(y) \ge 0 \text{ for } 0 \le y \le 2", sympy.Tuple(y0),
                  all(st.held for st in s), "[0, y₀] by monotonicity, [y₀, 2] by f₃ ≥ f₅ ≥ 0"))
    return _proposition("71", r"D_{\alpha/2,1/\alpha}(x) - H_\alpha(x) \ge 0", s)


def _single_interior_root(eq: str, name: str, d: sympy.Expr, end: sympy.Expr) -> tuple[sympy.Expr, Step]:
    """The root y₀ of f' in (0, end): f' = 0 solved over the reals (0 and y₀), y₀ checked to be a root and inside."""
    y_real = sympy.Symbol("y", real=True)
    roots = sympy.solve(d.subs(y, y_real), y_real)
    inside = [r for r in roots if r != 0 and bool(r > 0) and bool(r < end)]
    y0 = inside[0] if len(inside) == 1 else sympy.nan
    held = len(inside) == 1 and 0 in roots and _is_root(d, y0)
    return y0, Step(eq, name + r"'(y) = 0 \text{ at } y = 0 \text{ and at } y_0 = " + tex(y0) + r" \in (0, "
                    + tex(sympy.sympify(end)) + ")", sympy.Tuple(*roots), held,
                    "sympy.solve gives the roots Rolle allows; y₀ is written with Lambert W")


def _is_root(d: sympy.Expr, root: sympy.Expr) -> bool:
    """d(root) = 0 for a root written with W = LambertW(z): replace e^{−W} by W/z, from W·e^{W} = z."""
    value = sympy.expand(d.subs(y, root))
    for w in value.atoms(sympy.LambertW):
        value = sympy.expand(value.xreplace({exp(-w): w / w.args[0]}))
    return is_zero(value)


@functools.lru_cache(maxsize=None)
def proposition_3() -> tuple[Step, ...]:
    """The bounds are tight (eqs. 81–92): the limits 85–87 force β = 1/α, α₂ = α/2 and α/2 ≤ α₁ ≤ α; f₆ (eq. 90)
    then rules out α/2 < α₁ < α."""
    a_s, b_s, eps = sympy.symbols("alpha_s beta_s epsilon", positive=True)
    far = sympy.expand(D(x, a_s, b_s) - H_OUTER)  # x ≥ α: where the limits are taken
    s = [Step("83–84", r"x \ge \alpha:\ D_{\alpha_*,\beta_*}(x) - H_\alpha(x) = " + tex(far), far,
              is_zero(far - ((a_s * exp(-x / a_s) + x - a_s) / b_s - alpha * (x - alpha / 2))),
              "eqs. 81–82 with H_α subtracted throughout")]
    lim_upper = sympy.limit(far.subs({a_s: alpha / 2, b_s: 1 / alpha}), x, sympy.oo)
    lim_lower = sympy.limit(far.subs({a_s: alpha, b_s: 1 / alpha}), x, sympy.oo)
    s.append(Step("85", r"\lim_{x\to\infty} D_{\alpha/2,1/\alpha}(x) - H_\alpha(x) = " + tex(lim_upper), lim_upper,
                  lim_upper == 0, "sympy.limit"))
    s.append(Step("86", r"\lim_{x\to\infty} D_{\alpha,1/\alpha}(x) - H_\alpha(x) = " + tex(lim_lower), lim_lower,
                  is_zero(lim_lower + alpha**2 / 2), "sympy.limit"))
    # eq. 87: β* below, at and above 1/α, written with ε > 0 so SymPy knows the sign
    below = sympy.limit(far.subs(b_s, 1 / (alpha + eps)), x, sympy.oo)
    at = sympy.limit(far.subs(b_s, 1 / alpha), x, sympy.oo)
    above = sympy.limit(far.subs(b_s, 1 / alpha + eps), x, sympy.oo)
    s.append(Step("87", r"\lim_{x\to\infty} D_{\alpha_*,\beta_*}(x) - H_\alpha(x) = \begin{cases}" + tex(below)
                  + r", & \beta_* < 1/\alpha \\ " + tex(at) + r", & \beta_* = 1/\alpha \\ " + tex(above)
                  + r", & \beta_* > 1/\alpha \end{cases}", sympy.Tuple(below, at, above),
                  below == sympy.oo and above == -sympy.oo and is_zero(at - alpha * (alpha / 2 - a_s)),
                  "β* = 1/(α + ε) and β* = 1/α + ε with ε > 0"))
    # what the limits allow: 0 ≤ lim(D_{α₂} − H) ≤ 0 and −α²/2 ≤ lim(D_{α₁} − H) ≤ 0, with α_* = kα
    k = sympy.Symbol("k", positive=True)
    lim_k = sympy.expand(at.subs(a_s, k * alpha) / alpha**2)
    only_half = sympy.solveset(lim_k, k, sympy.S.Reals)
    band = sympy.reduce_inequalities([lim_lower / alpha**2 <= lim_k, lim_k <= 0], k)
    s.append(Step("87", r"\beta_* = \tfrac{1}{\alpha},\ \alpha_2 = " + tex(alpha * only_half.args[0])
                  + r",\ \tfrac{\alpha}{2} \le \alpha_1 \le \alpha", sympy.Tuple(only_half, band),
                  only_half == sympy.FiniteSet(sympy.Rational(1, 2))
                  and band.as_set() == sympy.Interval(sympy.Rational(1, 2), 1),
                  "α_* = kα: the limit of eq. 84 must be 0, the one of eq. 83 in [−α²/2, 0]"))
    # eqs. 88–90: a point where D_{α₁,1/α} − H_α > 0 for α/2 < α₁ < α
    a1 = sympy.Symbol("alpha_1", positive=True)
    near = sympy.expand(D(x, a1, 1 / alpha) - H_INNER)
    s.append(Step("88–89", r"0 \le x \le \alpha:\ D_{\alpha_1,1/\alpha}(x) - H_\alpha(x) = " + tex(near), near,
                  is_zero(near - (alpha * (a1 * exp(-x / a1) + x - a1) - x**2 / 2)), "eq. 19 − eq. 5"))
    step, f6 = _reduction("90", "f_6", near.subs(a1, alpha / gamma), alpha * y / gamma, alpha**2 / gamma,
                          exp(-y) + y - 1 - y**2 / (2 * gamma), "α₁ = α/γ, y = γx/α, ÷ α²/γ")
    s.append(step)
    step, d6 = _derivative("91", "f_6", f6, 1, -exp(-y) + 1 - y / gamma)
    s.append(step)
    step, dd6 = _derivative("92", "f_6", f6, 2, exp(-y) - 1 / gamma)
    s.append(step)
    g = sympy.Symbol("g", positive=True)  # γ = 1 + g: γ > 1 is all the sign below needs
    s.append(_value("91", "f_6'(0)", d6, 0, 0))
    curv = sympy.simplify(dd6.subs(y, 0).subs(gamma, 1 + g))
    s.append(Step("92", r"f_6''(0) = " + tex(dd6.subs(y, 0)) + r" > 0 \text{ for } \gamma > 1", curv,
                  bool(curv.is_positive), "with γ = 1 + g, g > 0"))
    end = sympy.simplify(d6.subs(y, gamma))
    s.append(Step("91", r"f_6'(\gamma) = " + tex(end) + " < 0", end, bool(end.is_negative), "evaluated"))
    y_real = sympy.Symbol("y", real=True)
    turn = sympy.solveset(dd6.subs(y, y_real), y_real, sympy.S.Reals)
    turn = sympy.FiniteSet(*(sympy.expand_log(r, force=True) for r in turn)) if turn.is_FiniteSet else turn
    s.append(Step("92", r"f_6''(y) = 0 \iff y \in " + tex(turn), turn,
                  len(turn) == 1 and is_zero(next(iter(turn)) - log(gamma)),
                  "a single root log γ, so f₆' has at most two (Rolle)"))
    # between 0 and y₀, f₆ > 0: its Maclaurin series starts with (1 − 1/γ)y²/2 > 0 — an explicit witness
    lead = sympy.series(f6, y, 0, 3).removeO()
    s.append(Step("90", r"f_6(y) = " + tex(lead) + r" + O(y^3) > 0 \text{ for small } y > 0", lead,
                  is_zero(lead - (1 - 1 / gamma) * y**2 / 2) and s[-3].held and _integrated(f6, 0)
                  and f6.subs(y, 0) == 0, "f₆(0) = f₆'(0) = 0 and f₆''(0) > 0, so f₆ > 0 on (0, y₀)"))
    s.append(Step("88", r"\alpha_1 = \alpha", sympy.Tuple(lead), all(st.held for st in s),
                  "any α/2 < α₁ < α has D_{α₁,1/α} − H_α > 0 somewhere, breaking eq. 81"))
    return _proposition("81–82", r"D_{\alpha,1/\alpha} \le D_{\alpha_1,\beta_1} \le H_\alpha \le D_{\alpha_2,\beta_2}"
                         r" \le D_{\alpha/2,1/\alpha} \iff \alpha_1 = \alpha,\ \alpha_2 = \tfrac{\alpha}{2},\ "
                         r"\beta_1 = \beta_2 = \tfrac{1}{\alpha}", s)


@dataclass(frozen=True)
class BoundsCheck:
    """Eq. 27 tested at ``n`` random (x, α): the smallest margins H − D_{α,1/α} and D_{α/2,1/α} − H (relative to
    H + α², the size of the rounding error) and how many points broke a bound beyond float64 rounding."""

    n: int
    violations: int
    min_lower_margin: float
    min_upper_margin: float


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
    return BoundsCheck(n, violations, float(lower.min()), float(upper.min()))


def numeric_step(n: int = 10**6, seed: int = 0) -> Step:
    """Eq. 27 as a :class:`Step` backed by :func:`check_bounds_numerically`."""
    c = check_bounds_numerically(n, seed)
    return Step("27", r"D_{\alpha,1/\alpha}(x) \le H_\alpha(x) \le D_{\alpha/2,1/\alpha}(x)"
                rf"\ \text{{at {c.n:,} random points}}", sympy.Integer(c.violations), c.violations == 0,
                f"{c.violations} violations; smallest relative margins {c.min_lower_margin:.3g}, "
                f"{c.min_upper_margin:.3g} (labkit.losses, float64)")


def all_steps() -> tuple[Step, ...]:
    """Propositions 1–3 in the paper's order."""
    return proposition_1() + proposition_2() + proposition_3()
