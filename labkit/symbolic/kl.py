"""Appendix A in SymPy: the KL divergence of two Laplace distributions (eqs. 54–63), and the loss D_{α,β} (eq. 19).

:func:`derive_kl` integrates the cross entropy (eq. 57) piece by piece on each side of μ₁ ≥ μ₂ (eq. 58) and
μ₁ < μ₂ (eq. 59) with ``sympy.integrate``, joins the two cases into eqs. 60–61, integrates the entropy (eq. 62) and
subtracts (eq. 63); :func:`derive_loss` specialises the result to eq. 18 and turns it into the loss eq. 19.
:func:`loss_parameters` reads (α, β) back off any expression that is a D_{α,β}; Sections 4.3 and 5 use it.
"""
from __future__ import annotations

import functools

import sympy
from sympy import Abs, exp, log

from labkit.symbolic.steps import Step, is_zero

__all__ = ["laplace_kl_loss_expr", "loss_parameters", "derive_kl", "derive_loss", "kl_divergence_expr"]


def laplace_kl_loss_expr(x: sympy.Expr, alpha: sympy.Expr, beta: sympy.Expr) -> sympy.Expr:
    """The proposed loss D_{α,β}(x) of eq. 19 as a SymPy expression (α: label scale b₁, β: prediction scale b₂)."""
    return (alpha * exp(-Abs(x) / alpha) + Abs(x) - alpha) / beta


def loss_parameters(expr: sympy.Expr, x: sympy.Symbol) -> tuple[sympy.Expr, sympy.Expr]:
    """Solve for (a, b) such that ``expr`` ≡ D_{a,b}(x) for x ≥ 0, and verify the identity.

    D_{a,b} has D''(0) = 1/(ab) and D'''(0⁺) = −1/(a²b) (from eq. 22), two equations that fix a and b; the whole
    identity is then checked by simplification. Raises ``ValueError`` when ``expr`` is not of the form D_{a,b}.
    """
    u = sympy.Symbol("u", positive=True)
    a, b = sympy.symbols("a b", positive=True)
    e = expr.subs(x, u)
    target = laplace_kl_loss_expr(u, a, b)
    equations = [sympy.Eq(sympy.diff(e, u, k).subs(u, 0), sympy.diff(target, u, k).subs(u, 0)) for k in (2, 3)]
    solutions = sympy.solve(equations, [a, b], dict=True)
    for sol in solutions:
        if is_zero(e - target.subs(sol)):
            return sympy.simplify(sol[a]), sympy.simplify(sol[b])
    raise ValueError(f"expr is not of the form D_(a,b)({x}) (eq. 19): {expr}")
