"""Feedback for the exercises of notebooks 02 and 03: each check takes the reader's prediction and says whether it
is right, with the value computed here by SymPy (never typed in) and one sentence on why.

A check called with ``None`` (no prediction yet) only asks for one; it reveals nothing (:mod:`labkit.feedback`). :func:`shortcut_attempt` is
notebook 03's "break the proof" exercise: Proposition 2 with the tempting shortcut "f₃′ ≥ 0 on all of [0, 2]".
"""
from __future__ import annotations

import sympy
from sympy import LambertW, exp, oo

from labkit.feedback import Feedback, number
from labkit.symbolic import lemmas as L
from labkit.symbolic.bounds import H, alpha, x, y
from labkit.symbolic.claims import Proof, argument, symbolic
from labkit.symbolic.facts import Sign, far_piece
from labkit.symbolic.kl import b1, b2, kl_divergence_expr, laplace_kl_loss_expr, loss_parameters, mu1, mu2
from labkit.symbolic.likelihood import cross_entropy_expr

__all__ = ["Feedback", "dirac_limit", "dropped_constant", "scaling_law", "lower_gap_limit", "root_y0",
           "shortcut_attempt"]


def dirac_limit(answer) -> Feedback:
    """Notebook 02: the cross entropy −∫p log q for y = 1, F = 0, b₂ = 1 as the label scale b₁ → 0."""
    cross = cross_entropy_expr().subs({mu1: 1, mu2: 0, b2: 1})
    limit = sympy.limit(cross, b1, 0, "+")
    path = ", ".join(f"{float(cross.subs(b1, b)):.4f}" for b in (1, sympy.Rational(1, 10), sympy.Rational(1, 100)))
    return number(answer, float(limit), 0.02,
                   f"At $b_1 = 1, 0.1, 0.01$ the cross entropy is {path}, tending to ${sympy.latex(limit)}$, "
                   r"which is $|y - F|/b_2 + \log 2b_2 = -\log q(y)$: the negative log-likelihood of the label.")


def dropped_constant(answer) -> Feedback:
    """Notebook 02: KL − D_{b₁,b₂}(x) for b₁ = 1, b₂ = 2 — the constant eq. 19 drops (the same for every x)."""
    r = sympy.Symbol("r", real=True)
    gap = kl_divergence_expr(r, b1, 0, b2) - laplace_kl_loss_expr(r, b1, b2)
    value = sympy.simplify(gap.subs({b1: 1, b2: 2}))
    general = sympy.simplify(gap)
    return number(answer, float(value), 0.02,
                   f"It is ${sympy.latex(value)}$ at every residual: the difference is "
                   f"${sympy.latex(general)}$, free of $x$, and 0 only when $b_1 = b_2$.")


def scaling_law(a, b) -> Feedback:
    """Notebook 02: the (a, b) with D_{1,1}(3x) = D_{a,b}(x) (eq. 28)."""
    u = sympy.Symbol("u", real=True)
    want = loss_parameters(laplace_kl_loss_expr(3 * u, 1, 1), u)
    if a is None or b is None:
        return Feedback(None, "Replace both Nones by your numbers and run the cell again.")
    got = [number(g, float(w), 0.02, "") for g, w in zip((a, b), want)]
    return Feedback(all(f.correct for f in got), f"You said $(a, b) = ({float(a):.4g}, {float(b):.4g})$; SymPy "
                    f"solves $D_{{1,1}}(3x) = D_{{a,b}}(x)$ for $(a, b) = ({sympy.latex(want[0])}, "
                    f"{sympy.latex(want[1])})$: stretching the residual by 3 shrinks both scales by 3 (eq. 28).")


def lower_gap_limit(answer) -> Feedback:
    """Notebook 03: lim (H_α − D_{α,1/α})/α² as x → ∞ (eq. 86, with the sign turned round)."""
    u = sympy.Symbol("u", positive=True)
    far = far_piece(H - laplace_kl_loss_expr(x, alpha, 1 / alpha), x).subs(x, u)  # x > α: eq. 5's linear piece
    limit = sympy.limit(sympy.expand(far / alpha**2), u, oo)
    return number(answer, float(limit), 0.02,
                   f"Far out both are lines of slope $\\alpha$ and the gap settles at ${sympy.latex(limit)}\\,"
                   r"\alpha^2$ (eq. 86): the lower bound is tight near 0 and loose far out, the upper one the "
                   "other way round.")


def root_y0(answer) -> Feedback:
    """Notebook 03: y₀, where f₃′ changes sign on (0, 2) (2 + W(−2e^{−2}), eq. 76)."""
    y0 = 2 + LambertW(-2 * exp(-2))
    return number(answer, float(y0), 0.02,
                   r"SymPy solves $1 - y/2 = e^{-y}$ with Lambert's $W$: $y_0 = 2 + W(-2e^{-2})$. Below $y_0$, "
                   r"$f_3$ rises; above it, it falls back towards $f_3(2) = e^{-2}$.")


def shortcut_attempt() -> Proof:
    """Proposition 2's tempting shortcut: "f₃(0) = 0 and f₃′ ≥ 0 on [0, 2], so f₃ ≥ 0" — one premise is false."""
    f3, d3 = exp(-y) + y - 1 - y**2 / 4, -exp(-y) + 1 - y / 2
    start = symbolic(Sign(f3, y, sympy.FiniteSet(0), "=", "f_3({})"), "Evaluate $f_3$ at 0.")
    slope = symbolic(Sign(d3, y, sympy.Interval(0, 2), ">=", "f_3'({})"), "The shortcut: assume $f_3'$ never goes "
                     "negative on $[0, 2]$.")
    ends = argument(L.MONOTONE, Sign(f3, y, sympy.Interval(0, 2), ">=", "f_3({})"), (start, slope),
                    "Lemma M would finish the proof in one line.", "74")
    return Proof("Shortcut to Proposition 2", r"f_3(y) \ge 0 \quad \text{for } 0 \le y \le 2", (start, slope, ends),
                 "74", "A two-line attempt: SymPy checks each claim, and the conclusion holds only if all do.")
