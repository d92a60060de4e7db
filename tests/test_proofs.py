"""Proofs as chains of claims (labkit.symbolic.facts, lemmas, claims, bounds, tightness): every proposition holds,
each claim's status is what it says, and a wrong step — a false premise, a lemma applied to the wrong facts, a
claim too strong for its premises — makes the conclusion fail. Also the Section 4 derivations (likelihood) against
quadrature, and the exercise checks."""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import sympy
from scipy import integrate
from sympy import LambertW, exp, log, oo

from labkit.symbolic import bounds, exercises, lemmas as L, likelihood, tightness
from labkit.symbolic.claims import Claim, LemmaSheet, Proof, argument, derivation, numeric, symbolic
from labkit.symbolic.facts import Allowed, Identity, Rescaled, Roots, Sign, decide
from labkit.symbolic.steps import StepFailed

x, y, alpha = bounds.x, bounds.y, bounds.alpha
f1, d1, dd1 = y**2 / 2 - y + 1 - exp(-y), y - 1 + exp(-y), 1 - exp(-y)
f3, d3 = exp(-y) + y - 1 - y**2 / 4, -exp(-y) + 1 - y / 2
Y0 = 2 + LambertW(-2 * exp(-2))


def _claim(proof: Proof, statement_part: str) -> Claim:
    (found,) = [c for c in proof.claims if statement_part in c.statement]
    return found


# ---------------------------------------------------------------------------------------------------------------
# the three propositions
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("proof", tightness.proofs(), ids=lambda p: p.title)
def test_every_proposition_holds_claim_by_claim(proof):
    assert proof.held, str(proof)
    assert proof.require() is proof
    assert {c.status for c in proof.claims} <= {"symbolic", "argument"}
    for c in proof.claims:
        assert c.because, c.statement  # one sentence of why, every claim
        assert (c.lemma is not None) == (c.status == "argument")
        assert all(u in proof.claims for u in c.uses), "a claim cites only claims of its own proof"
        if c.lemma is not None:
            assert c.cites >= 1 and "The lemma fits" in c.how


@pytest.mark.parametrize("proof", tightness.proofs(), ids=lambda p: p.title)
def test_equation_labels_follow_the_paper(proof):
    """Displayed equations appear in increasing order; "proves (n)" comes after (n) is stated (or is the proposition)."""
    def first(label):
        return int(re.match(r"\d+", label).group())

    def covers(label, n):
        ends = [int(e) for e in re.findall(r"\d+", label)]
        return ends[0] <= n <= ends[-1]

    shown = [first(c.eq) for c in proof.claims if c.eq and not c.eq.startswith("⇒")]
    assert shown == sorted(shown)
    for i, c in enumerate(proof.claims):
        if c.eq.startswith("⇒"):
            n = c.eq[1:]
            assert n == proof.eq or any(covers(d.eq, first(n)) for d in proof.claims[:i] if d.eq and d.eq[0] != "⇒"), n
    assert proof.claims[-1].eq == "⇒" + proof.eq


def test_proposition_1_reads_as_the_paper_argues():
    p = bounds.proposition_1()
    lemma_keys = [c.lemma.key for c in p.claims if c.lemma]
    assert lemma_keys == ["M", "M", "R", "M", "C", "C", "U", "E"]
    f1_pos = _claim(p, r"f_1(y) \ge 0")
    # f₁ ≥ 0 rests on f₁(0) = 0 and f₁' ≥ 0, which rests on f₁'(0) = 0 and f₁'' ≥ 0 — visible as citations
    assert [u.statement for u in f1_pos.uses[:2]] == ["f_1(0) = 0", r"f_1'(y) \ge 0 \quad \text{for } y \ge 0"]
    assert [u.statement for u in f1_pos.uses[1].uses[:2]][0] == "f_1'(0) = 0"
    assert p.claims[0].status == "symbolic" and "(-x)" in p.claims[0].statement  # evenness, derived


def test_evenness_is_derived_not_asserted():
    gap = bounds.H - (alpha * exp(-abs(x) / alpha) + abs(x) - alpha) * alpha
    assert decide(Identity(gap.subs(x, -x), gap, x))[0] is True
    odd = gap + x**3
    assert decide(Identity(odd.subs(x, -x), odd, x))[0] is False


def test_root_counts_by_sympy_where_it_can_and_rolle_where_it_cannot():
    f5 = -y**2 / 4 + y / 2
    ok, how = decide(Roots(f5, y, sympy.S.Reals, (0, 2)))
    assert ok and "Sturm" in how
    assert decide(Roots(f5, y, sympy.S.Reals, (0,)))[0] is False  # a root missing
    ok, how = decide(Roots(exp(-y) - sympy.Rational(1, 2), y, sympy.S.Reals, (log(2),)))
    assert ok and "solveset" in how
    # f₃' mixes y and e^{-y}: SymPy cannot count its roots, so the proof counts them with Rolle's theorem
    ok, how = decide(Roots(d3, y, sympy.Interval(0, 2), (0, Y0)))
    assert ok is None and "cannot count" in how
    rolle = _claim(bounds.proposition_2(), r"\in \left\{0, y_0\right\}")
    assert rolle.lemma is L.ROLLE and rolle.held


def test_the_fundamental_theorem_check_is_gone():
    import inspect
    source = inspect.getsource(bounds) + inspect.getsource(tightness)
    assert "_integrated" not in source and "integrate(" not in source


# ---------------------------------------------------------------------------------------------------------------
# wrong steps fail
# ---------------------------------------------------------------------------------------------------------------
def _start(expr, at=0, name="f({})"):
    return symbolic(Sign(expr, y, sympy.FiniteSet(at), "=", name), "evaluate")


def test_a_lemma_with_a_false_premise_does_not_hold():
    attempt = exercises.shortcut_attempt()
    start, slope, conclusion = attempt.claims
    assert start.held and slope.checked is False and "counterexample" in slope.how  # f₃'(2) = −e^{−2} < 0
    assert conclusion.checked is True and not conclusion.held  # the lemma fits, but one premise is false
    assert "rests on a claim that did not hold" in conclusion.verdict
    with pytest.raises(StepFailed, match="claim 2"):
        attempt.require()


def test_a_false_premise_upstream_breaks_every_claim_after_it():
    p = bounds.proposition_1()
    d1_at_0, d1_pos, f1_at_0, f1_pos = (_claim(p, s) for s in ("f_1'(0) = 0", r"f_1'(y) \ge 0", "f_1(0) = 0",
                                                                 r"f_1(y) \ge 0"))
    broken = dataclasses.replace(d1_at_0, checked=False)  # pretend SymPy had refuted f₁'(0) = 0
    new_d1 = argument(L.MONOTONE, d1_pos.fact, (broken, d1_pos.uses[1]), "same step")
    new_f1 = argument(L.MONOTONE, f1_pos.fact, (f1_at_0, new_d1), "same step")
    assert new_d1.checked and new_f1.checked  # each lemma still fits its premises
    assert not new_d1.held and not new_f1.held  # but the conclusion two steps later no longer holds


def test_a_lemma_cited_with_the_wrong_facts_does_not_fit():
    ddpos = symbolic(Sign(dd1, y, bounds.NONNEG, ">="), "convex")
    # f₁'' ≥ 0 is not f₁' ≥ 0: Lemma M recomputes the derivative and sees the mismatch
    skip = argument(L.MONOTONE, Sign(f1, y, sympy.Interval(0, 1), ">="), (_start(f1), ddpos), "skips a step")
    assert skip.checked is False and "✗ the slope" in skip.how
    # a premise on too small a set
    short = symbolic(Sign(dd1, y, sympy.Interval(0, sympy.Rational(1, 2)), ">="), "only up to 1/2")
    far = argument(L.MONOTONE, Sign(d1, y, bounds.NONNEG, ">="), (_start(d1), short), "claims too much")
    assert short.held and far.checked is False
    # too strict: f₁' = 0 at y = 0, so f₁' > 0 on [0, ∞) does not follow
    strict = argument(L.MONOTONE, Sign(d1, y, bounds.NONNEG, ">"), (_start(d1), ddpos), "claims too much")
    assert strict.checked is False
    # nor does "f₁' = 0 on [0, ∞)": the lemma concludes signs, not values
    assert argument(L.MONOTONE, Sign(d1, y, bounds.NONNEG, "="), (_start(d1), ddpos), "x").checked is False
    # the same conclusion on (0, ∞) is fine only with a strict slope; f₁'' = 1 − e^{−y} > 0 there
    slope = symbolic(Sign(dd1, y, sympy.Interval.open(0, oo), ">"), "strictly convex")
    assert argument(L.MONOTONE, Sign(d1, y, sympy.Interval.open(0, oo), ">"), (_start(d1), slope), "ok").held


def test_sign_change_and_root_count_lemmas_catch_wrong_uses():
    p = bounds.proposition_2()
    roots = _claim(p, r"\in \left\{0, y_0\right\}")
    at_1 = _claim(p, "f_3'(1)")
    # a root inside the interval: f₃' ≥ 0 on all of [0, 2] does not follow from its sign at 1
    assert argument(L.NO_SIGN_CHANGE, Sign(d3, y, sympy.Interval(0, 2), ">="), (roots, at_1), "x").checked is False
    assert argument(L.NO_SIGN_CHANGE, Sign(d3, y, sympy.Interval(0, Y0), ">="), (roots, at_1), "x").held
    # Rolle: f₃'' has one root, so two roots of f₃' must be shown — one is not enough
    dd_roots, at_0 = _claim(p, "f_3''(y) = 0"), _claim(p, "f_3'(0) = 0")
    assert argument(L.ROLLE, Roots(d3, y, sympy.S.Reals, (0,)), (dd_roots, at_0), "x").checked is False


def test_change_of_variable_needs_the_right_scale():
    inner = alpha**2 / 2 * exp(-2 * x / alpha) + alpha * x - alpha**2 / 2 - x**2 / 2
    gap = (alpha / 2 * exp(-2 * abs(x) / alpha) + abs(x) - alpha / 2) * alpha - bounds.H
    wrong = symbolic(Rescaled(inner, x, f3, y, alpha, alpha**2 / 2), "y = x/α instead of 2x/α")
    assert wrong.checked is False
    p = bounds.proposition_2()
    ident, resc, f3_pos = p.claims[1], p.claims[3], _claim(p, r"f_3(y) \ge 0 \quad \text{for } 0 \le y \le 2")
    ok = argument(L.CHANGE, Sign(gap, x, sympy.Interval(0, alpha), ">="), (ident, resc, f3_pos), "x")
    assert ok.held
    too_far = argument(L.CHANGE, Sign(gap, x, sympy.Interval(0, 2 * alpha), ">="), (ident, resc, f3_pos), "x")
    assert too_far.checked is False  # [0, 2α] is not where the identity (eq. 72) holds


def test_tightness_lemmas_recompute_what_the_limits_allow():
    p = tightness.proposition_3()
    lim86, lim87 = p.claims[2], p.claims[3]
    band = p.claims[5]
    assert band.fact.values == sympy.Interval(sympy.Rational(1, 2), 1) and band.held
    wrong_band = dataclasses.replace(band.fact, values=sympy.Interval(0, 1))
    assert argument(L.LIMITS, wrong_band, (lim86, lim87), "x").checked is False
    last = p.claims[-1]
    assert last.fact.values == sympy.FiniteSet(1) and last.held
    too_many = dataclasses.replace(last.fact, values=sympy.FiniteSet(sympy.Rational(1, 2), 1))
    assert argument(L.COUNTEREXAMPLE, too_many, last.uses, "x").checked is False


def test_a_lemma_given_a_premise_of_the_wrong_kind_says_so():
    c = argument(L.ROLLE, Roots(d3, y, sympy.S.Reals, (0, Y0)), (_start(d3),), "no count of f''s roots")
    assert c.checked is False and "not what Lemma Rolle needs" in c.how


# ---------------------------------------------------------------------------------------------------------------
# numeric claims, display
# ---------------------------------------------------------------------------------------------------------------
def test_numeric_claim_reads_as_a_sentence():
    c = bounds.numeric_claim(20_000, seed=1)
    assert c.status == "numeric" and c.points == 20_000 and c.held
    assert c.how.startswith("0 violations at 20,000 random points")
    assert "closest approach" in c.how.lower() and "rounding" in c.how
    assert "'" not in c.how and not re.search(r"\de-\d", c.how)  # no Python repr, no raw float exponent
    assert "numeric · 20,000 points" in c._repr_html_()
    failed = numeric("1 = 2", "a test", False, "1 violation at 1 point.", 1)
    with pytest.raises(StepFailed):
        failed.require()


def test_bounds_check_counts_violations_of_a_broken_bound():
    check = bounds.check_bounds_numerically(10_000, seed=2)
    assert check.violations == 0
    bad = dataclasses.replace(check, violations=3, min_upper_margin=-1e-3)
    assert bad.sentence().startswith("3 violations") and "margin" in bad.sentence()


def test_proofs_render_as_html_with_folded_details():
    page = bounds.proposition_2()._repr_html_()
    assert page.count("<details") == len(bounds.proposition_2().claims)
    assert "argument · Rolle" in page and "symbolic" in page and "proves (71)" in page and "(76)" in page
    for math in re.findall(r"\$([^$]*)\$", page):
        assert "<" not in math, math  # escaped for the HTML page; KaTeX and MathJax read the text
    assert "✗" in exercises.shortcut_attempt()._repr_html_()
    sheet = LemmaSheet(L.LEMMAS)._repr_html_()
    assert all(f"Lemma {lm.key}</b>" in sheet for lm in L.LEMMAS)
    text = str(bounds.proposition_1())
    assert text.splitlines()[0] == "Proposition 1 (64): holds"


def test_claim_rejects_an_unknown_status():
    with pytest.raises(ValueError, match="status"):
        Claim("1 = 1", "why", "believed", True)


def test_facts_decide_signs_by_assumptions_solveset_or_counterexample():
    assert decide(Sign(exp(-y), y, sympy.S.Reals, ">"))[0] is True
    assert decide(Sign(dd1, y, bounds.NONNEG, ">="))[0] is True
    assert decide(Sign(d3, y, sympy.Interval(0, 2), ">="))[0] is False
    assert decide(Sign(d1, y, bounds.NONNEG, ">="))[0] is None  # true, but needs Lemma M
    assert decide(Allowed(sympy.Symbol("k"), sympy.S.EmptySet, 0, 0, 0, "", (), ""))[0] is None


# ---------------------------------------------------------------------------------------------------------------
# Section 4: noise model, eq. 15, the Dirac limit (likelihood.py)
# ---------------------------------------------------------------------------------------------------------------
def test_section_4_steps_all_hold():
    steps = likelihood.derive_noise_model() + likelihood.derive_cross_entropy()
    assert [s.eq for s in steps] == ["12, 16", "13, 17", "16", "15", "15", "15", "9, 15"]
    assert all(s.held for s in steps), [s.eq for s in steps if not s.held]
    assert derivation("Section 4", steps).require().held


def _cross_entropy_by_quadrature(m1, s1, log_q):
    p = lambda t: np.exp(-abs(t - m1) / s1) / (2 * s1)
    return sum(integrate.quad(lambda t: -p(t) * log_q(t), lo, hi, epsabs=1e-12, limit=200)[0]
               for lo, hi in ((-np.inf, m1 - 50 * s1), (m1 - 50 * s1, m1), (m1, m1 + 50 * s1), (m1 + 50 * s1, np.inf)))


def test_dirac_limit_against_quadrature():
    # y = 1, F = 0.25, b₂ = 0.7: the cross entropy at a tiny label scale is −log q(y) of a Laplace q
    m1, m2, s2 = 1.0, 0.25, 0.7
    log_q = lambda t: -abs(t - m2) / s2 - np.log(2 * s2)
    nll = abs(m1 - m2) / s2 + np.log(2 * s2)
    assert _cross_entropy_by_quadrature(m1, 1e-4, log_q) == pytest.approx(nll, abs=1e-6)
    expr = likelihood.cross_entropy_expr().subs({likelihood.mu1: m1, likelihood.mu2: m2, likelihood.b2: s2})
    for s1 in (1.0, 0.3):
        assert float(expr.subs(likelihood.b1, s1)) == pytest.approx(_cross_entropy_by_quadrature(m1, s1, log_q),
                                                                    rel=1e-9)


def test_gaussian_cross_entropy_against_quadrature():
    m1, m2, s1, sigma = 0.4, -0.3, 0.5, 1.3
    log_q = lambda t: -(t - m2) ** 2 / (2 * sigma**2) - np.log(np.sqrt(2 * np.pi) * sigma)
    closed = ((m1 - m2) ** 2 + 2 * s1**2) / (2 * sigma**2) + np.log(np.sqrt(2 * np.pi) * sigma)  # the step's claim
    assert _cross_entropy_by_quadrature(m1, s1, log_q) == pytest.approx(closed, rel=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# exercises
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("check, right, wrong", [
    (exercises.dirac_limit, 1 + np.log(2), 1.0),
    (exercises.dropped_constant, np.log(2) - 0.5, 0.0),
    (exercises.lower_gap_limit, 0.5, 0.0),
    (exercises.root_y0, 1.5936, 1.0),
])
def test_exercise_checks_give_feedback(check, right, wrong):
    assert check(None).correct is None and "None" in check(None).message
    assert check(right).correct is True
    assert check(wrong).correct is False and f"{right:.4g}" in check(wrong).message
    assert check("two").correct is False
    assert "Right." in check(right)._repr_html_()


def test_scaling_law_exercise():
    assert exercises.scaling_law(1 / 3, 1 / 3).correct
    assert not exercises.scaling_law(3, 3).correct
    assert exercises.scaling_law(None, 1).correct is None


def test_the_claims_notebook_03_cites_by_number():
    p1, p2 = bounds.proposition_1().claims, bounds.proposition_2().claims
    assert p1[2].eq == "66" and p1[4].statement.startswith("f_2(y) =")  # "claims 3 and 5"
    assert [c.statement[:7] for c in p2[8:11]] == ["f_3'(0)", "f_3'(1)", "f_3'(2)"]  # "claims 9–11"
    assert p2[12].statement.startswith("f_3'(y_0) = 0")  # "claim 13"
    assert exercises.shortcut_attempt().claims[1].checked is False  # "claim 2 fails"
