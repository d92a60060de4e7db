"""What a proof claims, as data, and what SymPy can decide about such a claim on its own.

A *fact* is one of

- :class:`Sign` — f(v) R 0 for every v in a set (an interval, one point, or ℝ), R one of ≥ > ≤ < =;
- :class:`Identity` — two expressions agree for every v in a set (a Piecewise such as eq. 5 is read piece by piece,
  each piece where its condition holds);
- :class:`Rescaled` — g(k·y) = c·f(y): the substitution that turns an inequality in x into one in y;
- :class:`Roots` — the real roots of f in a set are exactly the listed points;
- :class:`Limit` — lim f = L as v → ∞, case by case in a parameter;
- :class:`Allowed` — the values of a parameter that an inequality leaves possible (only a lemma decides these).

:func:`decide` returns (verdict, how): ``True`` when SymPy proves the fact, ``False`` when it finds a counterexample,
``None`` when it can do neither — those facts need a named lemma (:mod:`labkit.symbolic.lemmas`). A parameter range
SymPy's assumptions cannot state (γ > 1) travels as ``given``, substitutions such as γ ↦ 1 + g with g > 0.
How a fact reads in LaTeX is :func:`labkit.symbolic.claims.describe`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import sympy
from sympy import oo

from labkit.symbolic.steps import is_zero, tex

__all__ = ["Sign", "Identity", "Rescaled", "Roots", "Limit", "Allowed", "Fact", "Span", "span", "decide",
           "far_piece", "canon", "le", "lt", "same", "contains", "subset", "outside", "REL_TEX"]

REL_TEX = {">=": r"\ge", ">": ">", "<=": r"\le", "<": "<", "=": "="}
Given = tuple  # ((symbol, replacement), ...)


@dataclass(frozen=True)
class Sign:
    """``expr`` R 0 for every ``var`` in ``where``; ``name`` a LaTeX template for the function, e.g. ``"f_1'({})"``."""

    expr: sympy.Expr
    var: sympy.Symbol
    where: sympy.Set
    rel: str
    name: str = ""
    given: Given = ()


@dataclass(frozen=True)
class Identity:
    """``lhs`` = ``rhs`` for every ``var`` in ``where``."""

    lhs: sympy.Expr
    rhs: sympy.Expr
    var: sympy.Symbol
    where: sympy.Set = sympy.S.Reals
    name: str = ""
    given: Given = ()


@dataclass(frozen=True)
class Rescaled:
    """g(k·y) = c·f(y), with ``params`` substituted into g first (e.g. α₁ = α/γ); k, c > 0."""

    g: sympy.Expr
    x: sympy.Symbol
    f: sympy.Expr
    y: sympy.Symbol
    k: sympy.Expr
    c: sympy.Expr
    name: str = ""
    params: Given = ()
    given: Given = ()


@dataclass(frozen=True)
class Roots:
    """The real roots of ``expr`` in ``where`` are exactly ``points``."""

    expr: sympy.Expr
    var: sympy.Symbol
    where: sympy.Set
    points: tuple
    name: str = ""
    given: Given = ()


@dataclass(frozen=True)
class Limit:
    """lim_{var→∞} expr = value under each case: ``cases`` = ((label, substitutions, value), ...)."""

    expr: sympy.Expr
    var: sympy.Symbol
    cases: tuple
    name: str = ""
    given: Given = ()


@dataclass(frozen=True)
class Allowed:
    """Only ``param`` ∈ ``values`` keeps ``lower ≤ family ≤ upper`` for all x, in the one case ``case`` of the
    family's limit; ``fixed`` the substitutions that case and ``param`` stand for (β_* = 1/α, α_* = kα).
    Only a lemma decides this."""

    param: sympy.Symbol
    values: sympy.Set
    family: sympy.Expr
    lower: sympy.Expr
    upper: sympy.Expr
    case: str
    fixed: Given
    statement: str
    given: Given = ()


Fact = Union[Sign, Identity, Rescaled, Roots, Limit, Allowed]


# --- intervals, compared endpoint by endpoint (SymPy's own set algebra gives up on symbolic endpoints) ----------
@dataclass(frozen=True)
class Span:
    lo: sympy.Expr
    hi: sympy.Expr
    lo_open: bool = False
    hi_open: bool = False


def span(s: sympy.Set) -> Span:
    if isinstance(s, sympy.FiniteSet) and len(s) == 1:
        (c,) = s.args
        return Span(c, c)
    if s == sympy.S.Reals:
        return Span(-oo, oo, True, True)
    return Span(s.start, s.end, bool(s.left_open), bool(s.right_open))


def _known_positive(d: sympy.Expr, known, given) -> bool:
    """d > 0 from a proven fact e(v) > 0 (or ≥ 0 with d/e > 0) on a set holding v's ``given`` value."""
    values = dict(given)
    for fact in known:
        if not isinstance(fact, Sign) or fact.var not in values:
            continue
        e, rel = canon(fact)
        value = values[fact.var]
        if rel in (">", ">=") and contains(span(fact.where), value):
            ratio = sympy.simplify(d / e.subs(fact.var, value))
            if ratio.is_positive and (rel == ">" or ratio.is_finite):
                return True
    return False


def lt(a, b, known=(), given=()) -> bool:
    """a < b, provably (``known``: proven facts about a parameter; ``given``: its substitutions)."""
    a, b = sub(sympy.sympify(a), given), sub(sympy.sympify(b), given)
    if a == -oo or b == oo:
        return a != b
    if a == oo or b == -oo:
        return False
    d = sympy.simplify(b - a)
    return bool(d.is_positive) or _known_positive(d, known, given)


def le(a, b, known=(), given=()) -> bool:
    """a ≤ b, provably."""
    return same(a, b, given) or lt(a, b, known, given)


def same(a, b, given=()) -> bool:
    a, b = sub(sympy.sympify(a), given), sub(sympy.sympify(b), given)
    if a in (oo, -oo) or b in (oo, -oo):
        return a == b
    return a == b or is_zero(a - b)


def contains(s: Span, c, known=(), given=()) -> bool:
    left = lt(s.lo, c, known, given) or (not s.lo_open and same(s.lo, c, given))
    return left and (lt(c, s.hi, known, given) or (not s.hi_open and same(s.hi, c, given)))


def outside(s: Span, c, known=(), given=()) -> bool:
    """c ∉ s, provably."""
    return (lt(c, s.lo, known, given) or lt(s.hi, c, known, given)
            or (s.lo_open and same(c, s.lo, given)) or (s.hi_open and same(c, s.hi, given)))


def subset(a: Span, b: Span, known=(), given=()) -> bool:
    """a ⊆ b, provably."""
    left = lt(b.lo, a.lo, known, given) or (same(b.lo, a.lo, given) and (a.lo_open or not b.lo_open))
    return left and (lt(a.hi, b.hi, known, given) or (same(a.hi, b.hi, given) and (a.hi_open or not b.hi_open)))


def canon(fact: Sign) -> tuple[sympy.Expr, str]:
    """(e, R) with R one of ≥ > =: f ≤ 0 is read as −f ≥ 0."""
    if fact.rel in ("<=", "<"):
        return -fact.expr, {"<=": ">=", "<": ">"}[fact.rel]
    return fact.expr, fact.rel


def given_of(*facts) -> Given:
    return tuple(dict(p for f in facts for p in getattr(f, "given", ())).items())


def sub(expr, given: Given):
    return expr.subs(dict(given)) if given else expr


# --- what SymPy decides on its own ------------------------------------------------------------------------------
def _on(var: sympy.Symbol, s: Span) -> dict:
    """var replaced by a symbol that carries the sign s guarantees (so |x| = x on x ≥ 0)."""
    if lt(0, s.lo) or (same(s.lo, 0) and s.lo_open):
        return {var: sympy.Dummy(var.name, positive=True)}
    if le(0, s.lo):
        return {var: sympy.Dummy(var.name, nonnegative=True)}
    return {}


def _without_lambert(v: sympy.Expr) -> sympy.Expr:
    """v with e^{−W(z)} written as W(z)/z (from W·e^W = z), so a root written with Lambert's W checks as one."""
    v = sympy.expand(v)
    for w in v.atoms(sympy.LambertW):
        v = sympy.expand(v.xreplace({sympy.exp(-w): w / w.args[0]}))
    return v


def _value_sign(v: sympy.Expr, rel: str):
    v = sympy.simplify(v)
    if rel == "=":
        return True if is_zero(v) or is_zero(_without_lambert(v)) else (False if v.is_nonzero else None)
    e, r = canon(Sign(v, sympy.Dummy(), sympy.S.Reals, rel))
    return e.is_positive if r == ">" else e.is_nonnegative


_NEGATION = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "=": "!="}


def _decide_sign(f: Sign):
    e, s = sub(f.expr, f.given), span(f.where)
    s = Span(sub(s.lo, f.given), sub(s.hi, f.given), s.lo_open, s.hi_open)
    if same(s.lo, s.hi):
        v = sympy.simplify(e.subs(f.var, s.lo))
        how = f"SymPy puts ${tex(f.var)} = {tex(s.lo)}$ into ${tex(f.expr, 'none')}$ and gets ${tex(v)}$"
        if v.atoms(sympy.LambertW) and is_zero(_without_lambert(v)):
            how += ", which is 0 once $e^{-W(z)}$ is written $W(z)/z$ (from $W e^{W} = z$)"
        return _value_sign(v, f.rel), how
    on = _on(f.var, s)
    if on and _value_sign(e.subs(on), f.rel):
        return True, (f"SymPy's assumptions settle it: with ${tex(f.var)}$ in the set, ${tex(f.expr)}$ is "
                      + ("positive" if f.rel == ">" else "non-negative" if f.rel == ">=" else "of that sign"))
    if s.lo != -oo or s.hi != oo:
        interval = sympy.Interval(s.lo, s.hi, s.lo_open, s.hi_open)
    else:
        interval = sympy.S.Reals
    bad = sympy.solveset(sympy.Rel(e, 0, _NEGATION[f.rel]), f.var, interval) if f.rel != "=" else None
    if bad == sympy.S.EmptySet:
        return True, (rf"SymPy finds no point where it fails: $\texttt{{solveset}}\big("
                      rf"{tex(sympy.Rel(f.expr, 0, _NEGATION[f.rel]))},\ {tex(interval)}\big) = \emptyset$")
    for point in (s.lo, s.hi, (s.lo + s.hi) / 2):
        if point.is_finite and contains(s, point) and _value_sign(e.subs(f.var, point), f.rel) is False:
            value = sympy.simplify(e.subs(f.var, point))
            return False, f"counterexample: at ${tex(f.var)} = {tex(point)}$ the value is ${tex(value)}$"
    found = f"returns ${tex(bad)}$" if bad is not None else "does not apply"
    return None, f"$\\texttt{{solveset}}$ {found}: SymPy cannot settle this alone"


def _agree(diff: sympy.Expr, var: sympy.Symbol, where: Span):
    """diff = 0 on ``where``: each piece of a Piecewise where its condition holds, Abs resolved by the sign of var."""
    diff = sympy.piecewise_fold(diff)
    pieces = diff.args if isinstance(diff, sympy.Piecewise) else ((diff, sympy.true),)
    rest, read = where, []
    for expr, cond in pieces:
        if rest is None:
            break
        if cond == sympy.true:
            part, after = rest, None
        else:
            held = span(sympy.solveset(cond, var, sympy.S.Reals))
            if not le(held.lo, rest.lo):
                return None, "a piece's condition does not start left of the set"
            if subset(rest, held):
                part, after = rest, None
            elif same(held.hi, rest.lo) and not held.hi_open and not rest.lo_open:
                part, after = Span(rest.lo, rest.lo), Span(rest.lo, rest.hi, True, rest.hi_open)
            elif lt(held.hi, rest.lo) or (same(held.hi, rest.lo) and (held.hi_open or rest.lo_open)):
                continue
            else:
                return None, "the pieces' conditions cut the set in a way this check does not follow"
        if same(part.lo, part.hi):
            ok = is_zero(expr.subs(var, part.lo))
        else:
            ok = is_zero(expr.subs(_on(var, part)))
        where_ = tex(sympy.Interval(part.lo, part.hi, part.lo_open, part.hi_open))
        read.append(f"on ${where_}$" + ("" if ok else f", left with ${tex(expr)}$"))
        if not ok:
            return False, "; ".join(read)
        rest = after
    if len(read) == 1 and where.lo == -oo and where.hi == oo:
        return True, "SymPy simplifies the difference of the two sides to 0"
    return True, ("the difference of the two sides simplifies to 0 on each part of the set where one formula "
                  "holds (eq. 5 is read piece by piece, $|x| = x$ for $x \\ge 0$): " + "; ".join(read))


def _decide_roots(f: Roots):
    e, s = sub(f.expr, f.given), span(f.where)
    points = [sub(sympy.sympify(p), f.given) for p in f.points]
    interval = sympy.S.Reals if s.lo == -oo and s.hi == oo else sympy.Interval(s.lo, s.hi, s.lo_open, s.hi_open)
    if e.is_polynomial(f.var):
        poly = sympy.Poly(e, f.var)
        found = [r for r in sympy.real_roots(poly) if contains(s, r)]
        count = poly.count_roots(s.lo, s.hi) if s.lo.is_finite and s.hi.is_finite else len(found)
        ok = len(set(found)) == len(points) == count and all(any(same(r, p) for p in points) for r in found)
        return ok, (rf"$\texttt{{real\_roots}}$ gives ${tex(sympy.FiniteSet(*found))}$; the Sturm-sequence count "
                    rf"on ${tex(interval)}$ is {count}")
    found = sympy.solveset(e, f.var, interval)
    if isinstance(found, sympy.FiniteSet):
        found = [sympy.expand_log(r, force=True) for r in found]
        ok = len(found) == len(points) and all(any(same(r, p) for p in points) for r in found)
        return ok, rf"$\texttt{{solveset}}$ on ${tex(interval)}$ returns ${tex(sympy.FiniteSet(*found))}$"
    return None, rf"$\texttt{{solveset}}$ returns ${tex(found)}$: SymPy cannot count these roots itself"


def far_piece(expr: sympy.Expr, var: sympy.Symbol) -> sympy.Expr:
    """The piece of a Piecewise that holds for all large var (every other condition's set is bounded above)."""
    expr = sympy.piecewise_fold(expr)
    if not isinstance(expr, sympy.Piecewise):
        return expr
    for piece, cond in expr.args:
        if cond == sympy.true:
            return piece
        if sympy.solveset(cond, var, sympy.S.Reals).sup == oo:
            raise ValueError(f"condition {cond} holds for arbitrarily large {var}")
    raise ValueError("no piece holds for large values")


def _decide_limit(f: Limit):
    var = sympy.Dummy(f.var.name, positive=True)
    far = far_piece(sub(f.expr, f.given), f.var).subs(f.var, var)
    got = [sympy.limit(far.subs(dict(s)), var, oo) for _, s, _ in f.cases]
    ok = all(same(g, v) for g, (_, _, v) in zip(got, f.cases))
    return ok, ("$\\texttt{limit}$ of the piece that holds for large values: "
                + ", ".join(f"${tex(g)}$" for g in got))


def decide(fact: Fact):
    """(True | False | None, how): SymPy's own verdict on ``fact``, with a LaTeX line on how it reached it."""
    if isinstance(fact, Sign):
        return _decide_sign(fact)
    if isinstance(fact, Identity):
        return _agree(sub(fact.lhs - fact.rhs, fact.given), fact.var, span(fact.where))
    if isinstance(fact, Rescaled):
        g = sub(fact.g.subs(dict(fact.params)), fact.given)
        d = g.subs(fact.x, sub(fact.k, fact.given) * fact.y) - sub(fact.c * fact.f, fact.given)
        ok = is_zero(d) and bool(sub(fact.k, fact.given).is_positive) and bool(sub(fact.c, fact.given).is_positive)
        return ok, (rf"with ${tex(fact.x)} = {tex(fact.k)}\,{tex(fact.y)}$ and dividing by ${tex(fact.c)}$, the "
                    "difference simplifies to 0")
    if isinstance(fact, Roots):
        return _decide_roots(fact)
    if isinstance(fact, Limit):
        return _decide_limit(fact)
    return None, "only a lemma decides this"
