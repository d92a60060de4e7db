"""The record of one derivation or proof step: which equation, what it says, what SymPy computed, whether it held.

A derivation in :mod:`labkit.symbolic` is a tuple of :class:`Step`; the notebooks render ``statement`` and raise
through :func:`require` when a step did not hold.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import sympy

__all__ = ["Step", "StepFailed", "require", "is_zero", "tex", "name_constant", "printed"]

# how the derivations' plain-named symbols read in LaTeX
_TEX_NAMES = {"lam": r"\lambda", "gamma": r"\gamma", "x_star": "x^{*}", "w_star": "w^{*}", "x_tilde": r"\tilde{x}",
              "w_tilde": r"\tilde{w}", "t_x": "t_x", "t_w": "t_w", "x_a": "x_a", "w_a": "w_a", "mu": r"\mu",
              "alpha_1": r"\alpha_1", "alpha_s": r"\alpha_*", "beta_s": r"\beta_*", "y_0": "y_0"}


@dataclass(frozen=True)
class Step:
    """One step of a derivation or proof.

    ``eq``: the paper's equation number(s), e.g. ``"67"`` or ``"58–59"``; ``statement``: the claim in LaTeX;
    ``proof``: the SymPy object that establishes it (a difference that simplified to 0, a limit, a derivative…);
    ``held``: whether SymPy established the claim; ``note``: one line on how; ``because``: one sentence on why the
    step is taken, for the reader.
    """

    eq: str
    statement: str
    proof: sympy.Basic
    held: bool
    note: str = ""
    because: str = ""

    def latex(self) -> str:
        """The statement tagged with its equation number, ready for ``IPython.display.Math``."""
        return rf"{self.statement} \qquad ({self.eq})"

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"


class StepFailed(AssertionError):
    """A step of a derivation or proof did not hold."""


def require(steps: Iterable[Step]) -> tuple[Step, ...]:
    """Return the steps unchanged if every one held; raise :class:`StepFailed` naming the first that did not."""
    steps = tuple(steps)
    for step in steps:
        if not step.held:
            raise StepFailed(f"eq. {step.eq} did not hold: {step.statement} (SymPy gave {step.proof})")
    return steps


def is_zero(expr: sympy.Basic) -> bool:
    """True when SymPy proves ``expr`` == 0 (simplify first, then ``equals`` as the fallback); never guesses."""
    reduced = sympy.simplify(expr)
    if reduced == 0:
        return True
    return bool(reduced.equals(0))


#: constants a proof names, shown by their name (e.g. the root y₀ = 2 + W(−2e^{−2}) as y_0); see :func:`name_constant`
_NAMED: dict = {}


def name_constant(value: sympy.Expr, latex: str) -> sympy.Expr:
    """Show ``value`` as ``latex`` wherever :func:`tex` prints it; returns ``value``."""
    _NAMED[value] = sympy.Symbol(latex)
    return value


def printed(*terms: sympy.Expr) -> sympy.Expr:
    """A sum kept in the order the paper prints its terms (``tex(..., order="none")`` shows it so)."""
    return sympy.Add(*terms, evaluate=False)


def tex(expr: sympy.Basic, order: str | None = None) -> str:
    """LaTeX for ``expr`` with the paper's letters (``lam`` → λ, ``x_star`` → x*, …) and named constants;
    ``order="none"`` keeps a :func:`printed` sum's order."""
    expr = sympy.sympify(expr)
    if _NAMED:
        expr = expr.xreplace(_NAMED)
    names = {sym: _TEX_NAMES[sym.name] for sym in expr.free_symbols if getattr(sym, "name", None) in _TEX_NAMES}
    return sympy.latex(expr, symbol_names=names, order=order) if order else sympy.latex(expr, symbol_names=names)
