"""A proof as a numbered chain of claims, each with one sentence of why and a badge saying how it is known.

A :class:`Claim` is *symbolic* (SymPy decided its fact, :func:`labkit.symbolic.facts.decide`), *numeric* (a test at
random points, with their number) or *argument* (a named lemma, :mod:`labkit.symbolic.lemmas`, applied to cited
claims). A claim **holds** only when its own check passed and every claim it uses holds, so one wrong premise
anywhere upstream shows at the conclusion. A :class:`Proof` is the ordered chain; in a notebook it renders as HTML
(KaTeX/MathJax-friendly ``$…$`` math, intermediate results folded in ``<details>``) and :meth:`Proof.require`
raises :class:`~labkit.symbolic.steps.StepFailed` naming the first claim that did not hold.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Iterable, Optional

import sympy
from sympy import oo

from labkit.symbolic.facts import REL_TEX, Fact, Identity, Limit, Rescaled, Roots, Sign, decide, same, span
from labkit.symbolic.lemmas import Lemma
from labkit.symbolic.steps import Step, StepFailed, tex

__all__ = ["Claim", "Proof", "LemmaSheet", "symbolic", "argument", "numeric", "from_steps", "derivation",
           "describe", "STATUSES"]

STATUSES = ("symbolic", "numeric", "argument")
_BADGE = {"symbolic": "#0b5cad", "numeric": "#8a5300", "argument": "#6f42c1"}
_MARK = {True: ("✓", "#1a7f37", "holds"), False: ("✗", "#cf222e", "fails"), None: ("?", "#6e7781", "open")}
_UPSTREAM = ("⚠", "#bc4c00", "rests on a claim that did not hold")
_DISPLAY = "\\displaystyle "


def _mark(c: "Claim") -> tuple[str, str, str]:
    return _UPSTREAM if c.checked is True and not c.held else _MARK[c.checked]


@dataclass(frozen=True, eq=False)
class Claim:
    """One link of a chain. ``statement`` LaTeX; ``because`` one sentence ($…$ math allowed); ``status`` one of
    :data:`STATUSES`; ``checked`` the claim's own check (True, False: refuted, None: not established); ``how`` what
    the check computed; ``uses`` the claims it rests on (a lemma's premises first); ``eq`` the paper's number."""

    statement: str
    because: str
    status: str
    checked: Optional[bool]
    how: str = ""
    eq: str = ""
    uses: tuple = ()
    lemma: Optional[Lemma] = None
    fact: Optional[Fact] = None
    points: int = 0
    section: str = ""
    cites: int = 0

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def held(self) -> bool:
        """The claim's own check passed and every claim it uses holds."""
        return self.checked is True and all(u.held for u in self.uses)

    @property
    def verdict(self) -> str:
        if self.checked is False:
            return "fails: " + ("the lemma does not fit its premises" if self.lemma else "it is false")
        if self.checked is None:
            return "not established: SymPy could not decide it"
        return "holds" if self.held else "does not hold: it rests on a claim that did not hold"

    def require(self) -> "Claim":
        """Return the claim if it holds; raise :class:`StepFailed` saying why not."""
        if not self.held:
            raise StepFailed(f"claim ({self.eq or 'unnumbered'}) {self.verdict}: {self.statement} [{self.how}]")
        return self

    def _repr_html_(self) -> str:
        return f'<ul style="padding-left:1em">{_row(0, self, lambda u: _text(_label(u.eq or "·")))}</ul>'

    def __str__(self) -> str:
        return f"[{self.status}] {self.verdict}: {self.statement} — {self.how}"


def symbolic(fact: Fact, because: str, eq: str = "", statement: str = "", uses: Iterable[Claim] = (),
             section: str = "") -> Claim:
    """A claim whose fact SymPy decides (:func:`~labkit.symbolic.facts.decide`)."""
    ok, how = decide(fact)
    return Claim(statement or describe(fact, full=True), because, "symbolic", ok, how, eq, tuple(uses), None, fact,
                 section=section)


def argument(lemma: Lemma, fact: Fact, premises: Iterable[Claim], because: str, eq: str = "", statement: str = "",
             uses: Iterable[Claim] = (), section: str = "") -> Claim:
    """A claim that follows by ``lemma`` from ``premises`` (whose facts the lemma checks it fits)."""
    premises = tuple(premises)
    ok, how = lemma.fits(tuple(p.fact for p in premises), fact)
    return Claim(statement or describe(fact), because, "argument", ok, how, eq, premises + tuple(uses), lemma, fact,
                 section=section, cites=len(premises))


def numeric(statement: str, because: str, passed: bool, how: str, points: int, eq: str = "",
            uses: Iterable[Claim] = (), section: str = "") -> Claim:
    """A claim tested at ``points`` random points; ``how`` says what was found, as a sentence."""
    return Claim(statement, because, "numeric", bool(passed), how, eq, tuple(uses), points=points, section=section)


def from_steps(steps: Iterable[Step], section: str = "") -> tuple[Claim, ...]:
    """Derivation :class:`~labkit.symbolic.steps.Step` records as symbolic claims (each stands on SymPy alone)."""
    return tuple(Claim(s.statement, s.because, "symbolic", bool(s.held), s.note, s.eq, section=section) for s in steps)


def derivation(title: str, steps: Iterable[Step], intro: str = "") -> "Proof":
    """A derivation (a tuple of :class:`~labkit.symbolic.steps.Step`) shown like a proof: numbered symbolic claims."""
    return Proof(title, "", from_steps(steps), intro=intro, kind="Derivation")


def _name(template: str, arg, expr) -> str:
    return template.format(tex(arg) if not isinstance(arg, str) else arg) if template else tex(expr)


def where_tex(var: sympy.Symbol, where: sympy.Set) -> str:
    s, v = span(where), tex(var)
    if s.lo == -oo and s.hi == oo:
        return r"\text{for all } " + v
    lo = "" if s.lo == -oo else tex(s.lo) + (" < " if s.lo_open else r" \le ")
    hi = "" if s.hi == oo else (" < " if s.hi_open else r" \le ") + tex(s.hi)
    if not hi:
        return r"\text{for } " + v + (" > " if s.lo_open else r" \ge ") + tex(s.lo)
    return r"\text{for } " + lo + v + hi


def describe(fact: Fact, full: bool = False) -> str:
    """The fact as one line of LaTeX; ``full`` also shows a named function's formula (f''(y) = 1 − e^{−y} ≥ 0)."""
    if isinstance(fact, Sign):
        s = span(fact.where)
        if same(s.lo, s.hi):
            head = _name(fact.name, s.lo, fact.expr.subs(fact.var, s.lo))
            if fact.rel == "=":
                return head + " = 0"
            v = sympy.simplify(fact.expr.subs(fact.var, s.lo))
            return (head if v == 0 or not fact.name else head + " = " + tex(v)) + " " + REL_TEX[fact.rel] + " 0"
        head = _name(fact.name, fact.var, fact.expr)
        if full and fact.name:
            head += " = " + tex(fact.expr, "none")
        return head + " " + REL_TEX[fact.rel] + r" 0 \quad " + where_tex(fact.var, fact.where)
    if isinstance(fact, Identity):
        tail = "" if fact.where == sympy.S.Reals else r" \quad " + where_tex(fact.var, fact.where)
        return _name(fact.name, fact.var, fact.lhs) + " = " + tex(fact.rhs, "none") + tail
    if isinstance(fact, Rescaled):
        return _name(fact.name, fact.y, fact.f) + " = " + tex(fact.f, "none")
    if isinstance(fact, Roots):
        among = r"\text{real } " + tex(fact.var) if fact.where == sympy.S.Reals else tex(fact.var) + r" \in " + tex(
            fact.where)
        return (_name(fact.name, fact.var, fact.expr) + r" = 0 \iff " + tex(fact.var) + r" \in "
                + tex(sympy.FiniteSet(*fact.points)) + r" \quad (" + among + ")")
    if isinstance(fact, Limit):
        lim = r"\lim_{" + tex(fact.var) + r"\to\infty} " + (fact.name or tex(fact.expr))
        if len(fact.cases) == 1:
            return lim + " = " + tex(fact.cases[0][2])
        rows = r" \\ ".join(tex(v) + r", & " + label for label, _, v in fact.cases)
        return lim + r" = \begin{cases}" + rows + r"\end{cases}"
    return fact.statement


def _math(latex: str) -> str:
    return "$" + html.escape(latex, quote=False) + "$"


def _text(prose: str) -> str:
    return html.escape(prose, quote=False)


def _badge(label: str, colour: str) -> str:
    return (f'<span style="display:inline-block;min-width:5.5em;text-align:center;font-size:0.8em;'
            f'padding:0 0.4em;border-radius:0.6em;color:#fff;background:{colour}">{_text(label)}</span>')


def _label(eq: str) -> str:
    """"67" → "(67)", the paper's displayed equation; "⇒67" → "proves (67)", the inequality it states is now shown."""
    return f"proves ({eq[1:]})" if eq.startswith("⇒") else f"({eq})"


def _why(c: Claim, cite) -> str:
    why = _text(c.because)
    if c.lemma is not None:
        cited = ", ".join(cite(u) for u in c.uses[:c.cites])
        extra = ", ".join(cite(u) for u in c.uses[c.cites:])
        why += (f" <i>By Lemma {_text(c.lemma.key)} ({_text(c.lemma.name)}) from {cited}"
                + (f", with {extra}" if extra else "") + ".</i>")
    elif c.uses:
        why += f" <i>Uses {', '.join(cite(u) for u in c.uses)}.</i>"
    return why


def _row(i, c: Claim, cite) -> str:
    """One claim as an HTML list item: badge, mark, the statement, the paper's number, why, and folded details."""
    mark, colour, title = _mark(c)
    label = c.status + (f" · {c.points:,} points" if c.status == "numeric" else "")
    label = label if c.lemma is None else f"argument · {c.lemma.key}"
    eq = f'<span style="float:right;color:#57606a">{_text(_label(c.eq))}</span>' if c.eq else ""
    detail = _text(c.how) if c.how else "no intermediate result"
    found = f"<br>{_text(c.how)}" if c.status == "numeric" else ""
    verdict = "" if c.held else f' <b style="color:{colour}">{_text(c.verdict)}</b>'
    number = f' value="{i}"' if i else ' style="list-style:none"'
    return (f'<li{number}><div style="margin:0.5em 0">{eq}{_badge(label, _BADGE[c.status])} '
            f'<span style="color:{colour};font-weight:bold" title="{title}">{mark}</span> '
            f'{_math(_DISPLAY + c.statement)}{verdict}<br>'
            f'<span style="color:#24292f">{_why(c, cite)}{found}</span>'
            + ("" if found else f'<details style="margin-left:1em;color:#57606a"><summary>details</summary>{detail}'
                                '</details>') + "</div></li>")


@dataclass(frozen=True, eq=False)
class Proof:
    """A proposition (``statement``, the paper's ``eq``) and the ordered ``claims`` that prove it; ``intro`` one
    sentence on the plan. A derivation is the same with ``kind="Derivation"``."""

    title: str
    statement: str
    claims: tuple
    eq: str = ""
    intro: str = ""
    kind: str = "Proposition"

    @property
    def held(self) -> bool:
        return all(c.held for c in self.claims)

    def number(self, claim: Claim) -> str:
        return next((str(i) for i, c in enumerate(self.claims, 1) if c is claim), "·")

    def require(self) -> "Proof":
        """Return the proof if every claim holds; raise :class:`StepFailed` naming the first that does not."""
        for i, c in enumerate(self.claims, 1):
            if not c.held:
                raise StepFailed(f"{self.title}, claim {i} ({c.eq or 'unnumbered'}) {c.verdict}: {c.statement} "
                                 f"[{c.how}]")
        return self

    def counts(self) -> dict:
        return {s: sum(c.status == s for c in self.claims) for s in STATUSES}

    def _repr_html_(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items() if n)
        mark, colour, _ = _MARK[True if self.held else False]
        eq = f" ({_text(self.eq)})" if self.eq else ""
        head = (f'<p><b>{_text(self.title)}</b>{eq}. {_math(self.statement) if self.statement else ""} '
                f'<span style="color:{colour};font-weight:bold">{mark} '
                f'{"holds" if self.held else "does not hold"}</span> — {len(self.claims)} claims: {counts}.</p>')
        parts = [f'<div class="labkit-proof">{head}']
        if self.intro:
            parts.append(f"<p>{_text(self.intro)}</p>")
        section, open_list = None, False
        for i, c in enumerate(self.claims, 1):
            if c.section != section:
                parts.append("</ol>" if open_list else "")
                parts.append(f'<p style="margin:0.8em 0 0 0"><i>{_text(c.section)}</i></p>' if c.section else "")
                parts.append(f'<ol start="{i}">')
                section, open_list = c.section, True
            parts.append(_row(i, c, self.number))
        parts.append("</ol></div>")
        return "".join(parts)

    def __str__(self) -> str:
        lines = [f"{self.title} ({self.eq}): {'holds' if self.held else 'does not hold'}"]
        lines += [f"  {i:2d}. [{c.status}{'/' + c.lemma.key if c.lemma else ''}] {c.verdict}: {c.statement}"
                  for i, c in enumerate(self.claims, 1)]
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))


@dataclass(frozen=True)
class LemmaSheet:
    """The lemmas, each stated once with its premises, for display before the proofs that cite them."""

    lemmas: tuple

    def _repr_html_(self) -> str:
        rows = "".join(f"<li><b>Lemma {_text(lm.key)}</b> ({_text(lm.name)}). {_text(lm.statement)} "
                       f"<i>Cited claims must say:</i> "
                       + "; ".join(f"({i}) {_text(p)}" for i, p in enumerate(lm.premises, 1)) + ".</li>"
                       for lm in self.lemmas)
        return f'<ul class="labkit-lemmas">{rows}</ul>'

    def __str__(self) -> str:
        return "\n".join(f"Lemma {lm.key} ({lm.name}): {lm.statement}" for lm in self.lemmas)
