"""The named lemmas the proofs of Appendix B lean on, each stated once with the premises it needs.

A lemma does not take its premises on trust: :meth:`Lemma.check` reads the facts (:mod:`labkit.symbolic.facts`) of
the claims cited as premises and confirms they are the facts the lemma asks for — about the same function (its
derivative computed by SymPy, not read off a label), on a set that covers the conclusion's, with the strictness
the conclusion claims. Whether the cited claims *hold* is the claim's business (:mod:`labkit.symbolic.claims`): a
conclusion holds only when its lemma fits and every premise holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy
from sympy import oo

from labkit.symbolic.facts import (Allowed, Identity, Limit, Rescaled, Roots, Sign, Span, canon, contains,
                                   given_of, lt, outside, same, span, sub, subset)
from labkit.symbolic.steps import is_zero, tex

__all__ = ["Lemma", "LEMMAS", "EVEN", "CHANGE", "CASES", "MONOTONE", "RESTRICT", "ROLLE", "NO_SIGN_CHANGE", "SUM",
           "LIMITS", "COUNTEREXAMPLE"]


@dataclass(frozen=True)
class Lemma:
    """``key`` a short label ("M"), ``name`` a few words, ``statement`` the lemma in prose with $…$ math,
    ``premises`` what each cited claim must say, ``check`` (premise facts, conclusion fact) → (fits, how)."""

    key: str
    name: str
    statement: str
    premises: tuple[str, ...]
    check: Callable

    def fits(self, premises: tuple, conclusion) -> tuple[bool, str]:
        try:
            return self.check(tuple(premises), conclusion)
        except (StopIteration, ValueError, TypeError, AttributeError) as err:  # a premise of the wrong kind
            return False, f"the cited claims are not what Lemma {self.key} needs ({type(err).__name__}: {err})"


def _of(kind, facts, test=lambda f: True):
    return next(f for f in facts if isinstance(f, kind) and test(f))


def _point(f: Sign) -> bool:
    s = span(f.where)
    return same(s.lo, s.hi)


def _weaker(rel: str, than: str) -> bool:
    """A conclusion with relation ``rel`` follows from premises with ``than``: > gives ≥, not the other way."""
    return rel == than or (rel == ">=" and than == ">")


def _even(premises, c: Sign):
    ident, half = _of(Identity, premises), _of(Sign, premises)
    g, x = c.expr, c.var
    checks = {"the symmetry is g(−x) = g(x) for all x": is_zero(ident.lhs - g.subs(x, -x)) and is_zero(ident.rhs - g)
              and ident.where == sympy.S.Reals,
              "the sign is g's, on all of x ≥ 0": is_zero(half.expr - g) and half.var == x
              and subset(Span(0, oo, False, True), span(half.where)),
              "the same sign, concluded for all x": half.rel == c.rel and c.where == sympy.S.Reals}
    return all(checks.values()), _report(checks)


def _change(premises, c: Sign):
    resc = _of(Rescaled, premises)
    ident = _of(Identity, premises)
    sign = _of(Sign, premises, lambda f: f.var == resc.y)
    known = [f for f in premises if isinstance(f, Sign) and f is not sign]
    given = given_of(c, resc, sign, *known)
    params = dict(resc.params)
    g_expr, f_expr = sub(c.expr, given), sub(resc.f, given)
    k = sub(resc.k, given)
    e, rel = canon(sign)
    target = span(c.where)
    scaled = Span(sympy.simplify(target.lo / k), sympy.simplify(target.hi / k), target.lo_open, target.hi_open)
    checks = {
        "the identity is about g": is_zero(sub(ident.lhs.subs(params), given) - g_expr),
        "the identity's other side is the rescaled piece": is_zero(sub(ident.rhs.subs(params) - resc.g.subs(params),
                                                                       given)),
        "k, c > 0": bool(k.is_positive) and bool(sub(resc.c, given).is_positive),
        "the sign is about f": is_zero(sub(e, given) - f_expr) and c.rel in (">=", ">"),
        "the set lies where the identity holds": subset(target, span(ident.where), known, given),
        "the set, divided by k, lies where f has its sign": subset(scaled, span(sign.where), known, given),
        "no stronger than the premise": _weaker(c.rel, rel),
    }
    return all(checks.values()), _report(checks)


def _report(checks: dict) -> str:
    """What the lemma checked, each line marked ✓ or ✗."""
    verdict = "The lemma fits" if all(checks.values()) else "The lemma does not fit"
    return verdict + ": " + "; ".join(("✓ " if ok else "✗ ") + name for name, ok in checks.items())


def _cases(premises, c: Sign):
    f, rel = canon(c)
    parts = [p for p in premises if isinstance(p, Sign)]
    spans = [span(p.where) for p in parts]
    target = span(c.where)
    checks = {
        "every piece is about the same function": all(is_zero(canon(p)[0] - f) for p in parts),
        "every piece is as strict as the conclusion": all(_weaker(rel, canon(p)[1]) for p in parts),
        "the pieces meet end to end": all(same(a.hi, b.lo) and not (a.hi_open and b.lo_open)
                                          for a, b in zip(spans, spans[1:])),
        "they cover the set": subset(target, Span(spans[0].lo, spans[-1].hi, spans[0].lo_open, spans[-1].hi_open)),
    }
    return all(checks.values()), _report(checks)


def _monotone(premises, c: Sign):
    f, rel = canon(c)
    start = _of(Sign, premises, _point)
    slope = _of(Sign, premises, lambda p: not _point(p))
    known = [p for p in premises if isinstance(p, Sign) and p not in (start, slope) and p.var != c.var]
    given = given_of(c, start, slope, *known)
    at, (v, v_rel), (s, s_rel) = span(start.where).lo, canon(start), canon(slope)
    df = sympy.diff(f, c.var)
    target = span(c.where)
    rising = same(at, target.lo, given) and is_zero(sub(s - df, given))
    falling = same(at, target.hi, given) and is_zero(sub(s + df, given))
    anchor_left_out = (rising and target.lo_open) or (falling and target.hi_open)
    checks = {
        "the endpoint value is f's": is_zero(v - f) or (v_rel == "=" and is_zero(v + f)),
        ("the slope is f′, rising from the left end" if rising else
         "the slope is −f′, falling to the right end" if falling else "the slope is ±f′ at the matching end"):
            rising or falling,
        "the slope has its sign inside the set": subset(Span(target.lo, target.hi, True, True), span(slope.where),
                                                        known, given),
        "a sign, strict only where the premises are": rel == ">=" or (rel == ">" and (
            v_rel == ">" or (s_rel == ">" and anchor_left_out))),
        "one variable": start.var == slope.var == c.var,
    }
    return all(checks.values()), _report(checks)


def _restrict(premises, c: Sign):
    p = _of(Sign, premises)
    known = [q for q in premises if q is not p]
    (e, rel), (f, c_rel) = canon(p), canon(c)
    target = span(c.where)
    same_values = is_zero(f - e) or (same(target.lo, target.hi) and is_zero((f - e).subs(c.var, target.lo)))
    checks = {"the same values there": same_values and p.var == c.var,
              "a part of the premise's set": subset(target, span(p.where), known, given_of(c, p)),
              "no stronger than the premise": _weaker(c_rel, rel)}
    return all(checks.values()), _report(checks)


def _rolle(premises, c: Roots):
    derivative = _of(Roots, premises)
    zeros = [p for p in premises if isinstance(p, Sign) and p.rel == "=" and _point(p)]
    f = c.expr
    points = [span(z.where).lo for z in zeros]
    distinct = all(lt(a, b) or lt(b, a) for i, a in enumerate(points) for b in points[i + 1:])
    checks = {
        "the counted roots are f′'s": is_zero(derivative.expr - sympy.diff(f, c.var)),
        "counted on a set holding the conclusion's": subset(span(c.where), span(derivative.where)),
        "one more root of f exhibited than f′ has": len(points) == len(derivative.points) + 1 == len(c.points),
        "the exhibited zeros are f's": all(is_zero(z.expr - f) or is_zero(z.expr + f) for z in zeros),
        "distinct, inside the set, and the conclusion lists them": distinct and all(
            contains(span(c.where), p) for p in points) and all(any(same(p, q) for q in points) for p in c.points),
    }
    return all(checks.values()), _report(checks)


def _no_sign_change(premises, c: Sign):
    roots = _of(Roots, premises)
    at = _of(Sign, premises, _point)
    f, rel = canon(c)
    given = given_of(c, roots, at)
    s = span(c.where)
    interior = Span(s.lo, s.hi, s.lo_open or any(same(s.lo, r, given) for r in roots.points),
                    s.hi_open or any(same(s.hi, r, given) for r in roots.points))
    (v, v_rel), point = canon(at), span(at.where).lo
    checks = {
        "the roots are f's": is_zero(sub(roots.expr - f, given)) or is_zero(sub(roots.expr + f, given)),
        "counted on a set holding this one": subset(s, span(roots.where), (), given),
        "no root inside": all(outside(interior, r, (), given) for r in roots.points),
        "the sample point is f's, strict, and inside": is_zero(sub(v - f, given)) and v_rel == ">"
                                                       and contains(interior, point, (), given),
        "a sign, strict only away from the roots": rel == ">=" or (rel == ">" and interior == s),
    }
    return all(checks.values()), _report(checks)


def _sum(premises, c: Sign):
    parts = [p for p in premises if isinstance(p, Sign)]
    f, rel = canon(c)
    checks = {
        "the parts add up to f": is_zero(sum(canon(p)[0] for p in parts) - f),
        "each part has the sign on the set": all(subset(span(c.where), span(p.where)) for p in parts),
        "a sign no stronger than the parts": all(canon(p)[1] in (">=", ">") for p in parts) and (
            rel == ">=" or (rel == ">" and any(canon(p)[1] == ">" for p in parts))),
    }
    return all(checks.values()), _report(checks)


def _limit_values(premises, bound: sympy.Expr):
    if bound == 0:
        return sympy.Integer(0)
    (lim,) = [p for p in premises if isinstance(p, Limit) and len(p.cases) == 1 and is_zero(p.expr - bound)]
    return sympy.sympify(lim.cases[0][2])


def _limits(premises, c: Allowed):
    lo, hi = _limit_values(premises, c.lower), _limit_values(premises, c.upper)
    (family,) = [p for p in premises if isinstance(p, Limit) and len(p.cases) > 1 and is_zero(p.expr - c.family)]
    fixed, survivors = dict(c.fixed), {}
    for label, subs, value in family.cases:
        if value in (oo, -oo):
            continue  # an infinite limit cannot sit between two finite ones
        if not all(same(fixed.get(s, s), v) for s, v in dict(subs).items()):
            return False, f"the case {label} is not the one the conclusion fixes"
        allowed = sympy.reduce_inequalities([lo <= value.subs(fixed), value.subs(fixed) <= hi], c.param)
        survivors[label] = sympy.Intersection(allowed.as_set(), sympy.Interval.open(0, oo))
    checks = {"the bounds are finite": bool(lo.is_finite) and bool(hi.is_finite),
              "only the stated case survives": list(survivors) == [c.case],
              "the allowed values are the stated ones": survivors.get(c.case) == c.values}
    allowed = tex(survivors.get(c.case, sympy.S.EmptySet))
    return all(checks.values()), _report(checks) + f"; allowed: ${tex(c.param)} \\in {allowed}$"


def _counterexample(premises, c: Allowed):
    before = _of(Allowed, premises)
    witness = _of(Sign, premises)
    ((gamma, one_plus_g),) = witness.given
    (g,) = one_plus_g.free_symbols
    member = sub(c.family.subs(dict(c.fixed)).subs(c.param, 1 / gamma), witness.given)
    excluded = sympy.imageset(sympy.Lambda(g, sympy.simplify(1 / one_plus_g)), sympy.Interval.open(0, oo))
    checks = {"the witness is a member of the family, k = 1/γ": is_zero(sub(witness.expr, witness.given) - member),
              "the same family, bounds and case as the allowed values": is_zero(before.family - c.family)
                                                                         and before.fixed == c.fixed
                                                                         and is_zero(before.lower - c.lower)
                                                                         and is_zero(before.upper - c.upper),
              "the gap is strictly positive there (breaking ≤ 0)": witness.rel == ">",
              "what is left is the stated set": sympy.Complement(before.values, excluded) == c.values}
    return all(checks.values()), _report(checks) + f"; excluded: $k \\in {tex(excluded)}$"


EVEN = Lemma("E", "evenness", r"If $g(-x) = g(x)$ for all $x$ and $g \ge 0$ for $x \ge 0$, then $g \ge 0$ for all $x$.",
             (r"$g(-x) = g(x)$ for all $x$", r"$g \ge 0$ for $x \ge 0$"), _even)
CHANGE = Lemma("C", "change of variable",
               r"If $g = h$ on a set $I$, $h(ky) = c\,f(y)$ with $k, c > 0$, and $f \ge 0$ (or $> 0$) for every "
               r"$y$ in $I/k$, then $g \ge 0$ (or $> 0$) on $I$.",
               (r"$g = h$ on $I$", r"$h(ky) = c\,f(y)$ with $k, c > 0$", r"$f$ has the sign on $I/k$"), _change)
CASES = Lemma("U", "by cases", r"If $g$ has a sign on intervals that meet end to end, it has it on their union.",
              (r"$g$ has the sign on each interval",), _cases)
MONOTONE = Lemma("M", "monotone from an endpoint",
                 r"If $f(a) \ge 0$ and $f' \ge 0$ on $(a, b)$, then $f \ge 0$ on $[a, b]$; if $f(b) \ge 0$ and "
                 r"$f' \le 0$ on $(a, b)$, likewise. With $f' > 0$ (resp. $< 0$) the conclusion is strict away "
                 r"from the endpoint used. (Mean value theorem: $f(y) - f(a) = f'(\xi)(y - a)$ for some $\xi$ "
                 r"between $a$ and $y$.)",
                 (r"$f = 0$ (or $\ge 0$) at the endpoint",
                  r"$f' \ge 0$ inside (rising from $a$) or $f' \le 0$ inside (falling to $b$)"), _monotone)
RESTRICT = Lemma("R", "restriction", r"A sign that holds on a set holds on every part of it, and for any function "
                 r"with the same values there.", (r"$f$ has the sign on a larger set",), _restrict)
ROLLE = Lemma("Rolle", "counting roots",
              r"Between two roots of $f$ lies a root of $f'$ (Rolle's theorem); so if $f'$ has exactly $n$ real "
              r"roots, $f$ has at most $n + 1$, and $n + 1$ distinct roots of $f$, once exhibited, are all of them.",
              (r"the roots of $f'$, all of them", r"$f = 0$ at $n + 1$ distinct points"), _rolle)
NO_SIGN_CHANGE = Lemma("I", "no root, no change of sign",
                       r"A continuous $f$ with no root inside an interval keeps one sign there — the sign it has at "
                       r"any one point inside — and the weak sign at the ends (intermediate value theorem).",
                       (r"the roots of $f$, all of them", r"$f > 0$ (or $< 0$) at one point inside"),
                       _no_sign_change)
SUM = Lemma("S", "sum of signs", r"If $p \ge 0$ and $q \ge 0$ on a set, so is $p + q$; so $f \ge g$ and $g \ge 0$ "
            r"give $f \ge 0$.", (r"$p \ge 0$ on the set", r"$q \ge 0$ on the set"), _sum)
LIMITS = Lemma("L", "order survives limits",
               r"If $a(x) \le g(x) \le b(x)$ for all large $x$ and the limits exist in $[-\infty, \infty]$, then "
               r"$\lim a \le \lim g \le \lim b$.", (r"$\lim a$", r"$\lim b$", r"$\lim g$, case by case"), _limits)
COUNTEREXAMPLE = Lemma("X", "one counterexample is enough",
                       r"If for some value of a parameter the gap $g$ is $> 0$ at even one $x$, that value breaks "
                       r"“$g \le 0$ for all $x$”.", ("the values still allowed", r"a point where $g > 0$"),
                       _counterexample)
LEMMAS = (EVEN, CHANGE, CASES, MONOTONE, RESTRICT, ROLLE, NO_SIGN_CHANGE, SUM, LIMITS, COUNTEREXAMPLE)
