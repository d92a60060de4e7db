"""labkit.symbolic: each derived expression against the paper's closed form (difference simplifies to 0) and against
labkit.losses / torch numerically; every proof step must hold; the two notebooks run top to bottom in smoke mode."""
from __future__ import annotations

import re
from fractions import Fraction as F

import numpy as np
import pytest
import sympy

import asyncio
from pathlib import Path

import mpmath
import nbclient
import nbformat
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from labkit import losses
from labkit.symbolic import bounds, detector, kl, series, tightness
from labkit.symbolic.steps import Step, StepFailed, is_zero, require

lam_, alpha_, sigma_ = sympy.symbols("lam alpha sigma", positive=True)


# ---------------------------------------------------------------------------------------------------------------
# Section 5 (detector.py)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("form, label, pred", [
    ("implementation", alpha_ * sigma_, sigma_ / lam_),          # eq. 42 / 53 with w_a = 1
    ("paper", alpha_ * sigma_, sigma_ / (lam_ * alpha_)),        # eq. 36 generalised (α = σ = 1 there)
])
def test_uncertainty_scale_exprs_equal_hand_forms(form, label, pred):
    got_label, got_pred = detector.uncertainty_scale_exprs(form)
    assert sympy.simplify(got_label - label) == 0
    assert sympy.simplify(got_pred - pred) == 0


# Table 1 → Table 2 of the paper, read by hand (x* and x̃ rows use σ_x, w* and w̃ rows σ_w)
TABLE_2 = [
    ("paper", (10, 1, 1), (1, F(1, 10))),
    ("implementation", (1, F(1, 9), 1), (F(1, 9), 1)),
    ("implementation", (1, 1, F(1, 10)), (F(1, 10), F(1, 10))),
    ("implementation", (1, 1, F(1, 5)), (F(1, 5), F(1, 5))),
    ("implementation", (F(1, 4), 1, F(1, 20)), (F(1, 20), F(1, 5))),
    ("implementation", (F(1, 2), 1, F(1, 20)), (F(1, 20), F(1, 10))),
    ("implementation", (F(1, 4), 1, F(1, 10)), (F(1, 10), F(2, 5))),
    ("implementation", (F(1, 2), 1, F(1, 10)), (F(1, 10), F(1, 5))),
]


@pytest.mark.parametrize("form, params, expected", TABLE_2)
def test_uncertainty_scales_reproduce_table_2(form, params, expected):
    got = detector.uncertainty_scales(*params, form=form)
    assert got == expected
    assert all(isinstance(v, F) for v in got)


@pytest.mark.parametrize("form", detector.FORMS)
def test_mapping_matches_labkit_losses_numerically(form):
    # c·D_{α,1/α}((pred − truth)/(σ w_a)) computed by labkit.losses must equal D_{label·w_a, pred·w_a}(pred − truth)
    rng = np.random.default_rng(4)
    for _ in range(20):
        lam, alpha, sigma = (F(int(rng.integers(1, 20)), int(rng.integers(1, 20))) for _ in range(3))
        w_a = float(rng.uniform(5, 300))
        label, pred = detector.uncertainty_scales(lam, alpha, sigma, form=form)
        diff = rng.normal(0, 3 * w_a, size=200)
        c = float(lam / alpha) if form == "implementation" else float(lam)
        lhs = c * losses.laplace_kl_loss(diff / (float(sigma) * w_a), float(alpha), 1 / float(alpha))
        rhs = losses.laplace_kl_loss(diff, float(label) * w_a, float(pred) * w_a)
        np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-300)


def test_mapped_loss_bounds_the_actual_huber_loss():
    # eq. 27 carried through Section 5: (λ/α)·H_α(d/(σw_a)) lies between D_{label,pred}(d) and the same with α/2
    rng = np.random.default_rng(7)
    lam, alpha, sigma, w_a = F(1), F(1, 9), F(1), 64.0
    label, pred = detector.uncertainty_scales(lam, alpha, sigma)
    d = rng.normal(0, w_a, 5000)
    huber = float(lam / alpha) * losses.huber(d / (float(sigma) * w_a), float(alpha))
    lower = losses.laplace_kl_loss(d, float(label) * w_a, float(pred) * w_a)
    upper = losses.laplace_kl_loss(d, float(label) * w_a / 2, float(pred) * w_a)
    assert np.all(lower <= huber * (1 + 1e-12)) and np.all(huber <= upper * (1 + 1e-12))


def test_detector_steps_all_hold():
    steps = detector.residual_steps() + detector.mapping_steps()
    assert [s.eq for s in steps] == ["39–41", "33–35", "45–47", "48", "49–51", "36", "42", "52", "53"]
    assert all(s.held for s in steps), [s.eq for s in steps if not s.held]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(lam=0, alpha=1, sigma=1), ValueError, "lam"),
    (dict(lam=1, alpha=F(-1, 9), sigma=1), ValueError, "alpha"),
    (dict(lam=1, alpha=1, sigma=0.1), TypeError, "sigma"),
    (dict(lam=True, alpha=1, sigma=1), TypeError, "lam"),
    (dict(lam=1, alpha=1, sigma=1, form="published"), ValueError, "form"),
])
def test_uncertainty_scales_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        detector.uncertainty_scales(**kwargs)


def test_uncertainty_scale_exprs_rejects_unknown_form():
    with pytest.raises(ValueError, match="form"):
        detector.uncertainty_scale_exprs("code")


# ---------------------------------------------------------------------------------------------------------------
# Appendix A (kl.py)
# ---------------------------------------------------------------------------------------------------------------
def test_appendix_a_steps_all_hold():
    steps, _ = kl.derive_kl()
    assert [s.eq for s in steps] == ["57", "58", "59", "60", "61", "62", "63"]
    assert all(s.held for s in steps), [s.eq for s in steps if not s.held]
    steps, _ = kl.derive_loss()
    assert [s.eq for s in steps] == ["18", "19", "19"] and all(s.held for s in steps)


def test_derived_kl_equals_closed_form_on_both_sides():
    _, k = kl.derive_kl()
    d = sympy.Symbol("d", positive=True)
    mu2, b1, b2 = kl.mu2, kl.b1, kl.b2
    closed = (b1 * sympy.exp(-d / b1) + d) / b2 + sympy.log(b2) - sympy.log(b1) - 1  # eq. 63, |μ₁ − μ₂| = d
    for mu1 in (mu2 + d, mu2 - d):
        assert sympy.simplify(k.subs(kl.mu1, mu1) - closed) == 0


def test_derived_kl_matches_torch_scipy_and_labkit():
    _, k = kl.derive_kl()
    f = sympy.lambdify((kl.mu1, kl.b1, kl.mu2, kl.b2), k, "numpy")
    rng = np.random.default_rng(0)
    m1, m2 = rng.normal(0, 3, 500), rng.normal(0, 3, 500)
    s1, s2 = rng.uniform(0.1, 4, 500), rng.uniform(0.1, 4, 500)
    ref = torch.distributions.kl_divergence(torch.distributions.Laplace(torch.tensor(m1), torch.tensor(s1)),
                                            torch.distributions.Laplace(torch.tensor(m2), torch.tensor(s2))).numpy()
    np.testing.assert_allclose(f(m1, s1, m2, s2), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(f(m1, s1, m2, s2), losses.laplace_kl_divergence(m1, s1, m2, s2), rtol=1e-10, atol=1e-12)
    for i in range(3):  # eq. 54 by quadrature, split at the two kinks
        log_p = lambda t: -abs(t - m1[i]) / s1[i] - np.log(2 * s1[i])
        log_q = lambda t: -abs(t - m2[i]) / s2[i] - np.log(2 * s2[i])
        integrand = lambda t: np.exp(log_p(t)) * (log_p(t) - log_q(t))
        cuts = [-np.inf, *sorted([m1[i], m2[i]]), np.inf]
        val = sum(integrate.quad(integrand, lo, hi, epsabs=1e-13, epsrel=1e-12)[0] for lo, hi in zip(cuts, cuts[1:]))
        assert val == pytest.approx(f(m1[i], s1[i], m2[i], s2[i]), rel=1e-9)


def test_derived_loss_is_eq_19_and_matches_labkit():
    _, loss = kl.derive_loss()
    x, a, b = sympy.Symbol("x", real=True), *sympy.symbols("alpha beta", positive=True)
    u = sympy.Symbol("u", positive=True)
    for s in (u, -u):
        by_hand = (a * sympy.exp(-u / a) + u - a) / b
        assert sympy.simplify(loss.subs(x, s) - by_hand) == 0
    f = sympy.lambdify((x, a, b), loss, "numpy")
    rng = np.random.default_rng(1)
    xs, al, be = rng.normal(0, 5, 1000), rng.uniform(0.5, 3, 1000), rng.uniform(0.1, 3, 1000)
    np.testing.assert_allclose(f(xs, al, be), losses.laplace_kl_loss(xs, al, be), rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# Sections 4.2–4.3 (series.py)
# ---------------------------------------------------------------------------------------------------------------
def test_section_4_steps_all_hold():
    steps, _ = series.derive_behaviour()
    assert [s.eq for s in steps] == ["21", "22", "20", "23", "24", "25", "26"]
    assert all(s.held for s in steps), [s.eq for s in steps if not s.held]
    props = series.derive_properties()
    assert [s.eq for s in props] == ["28", "29", "30", "31"] and all(s.held for s in props)


def _mp_loss(x, a, b):  # eq. 19 in mpmath, an independent reference for the derivatives
    return (a * mpmath.exp(-abs(x) / a) + abs(x) - a) / b


def test_derived_derivatives_match_mpmath_and_labkit():
    _, out = series.derive_behaviour()
    x, a, b = series.x, series.alpha, series.beta
    grad = sympy.lambdify((x, a, b), out["grad"], "mpmath")
    hess = sympy.lambdify((x, a, b), out["hess"], "mpmath")
    rng = np.random.default_rng(2)
    for xv, av, bv in zip(rng.normal(0, 3, 30), rng.uniform(0.2, 3, 30), rng.uniform(0.2, 3, 30)):
        xv, av, bv = mpmath.mpf(xv), mpmath.mpf(av), mpmath.mpf(bv)
        assert float(grad(xv, av, bv)) == pytest.approx(float(mpmath.diff(lambda t: _mp_loss(t, av, bv), xv)),
                                                        rel=1e-10, abs=1e-14)
        assert float(hess(xv, av, bv)) == pytest.approx(float(mpmath.diff(lambda t: _mp_loss(t, av, bv), xv, 2)),
                                                        rel=1e-8)
        assert float(grad(xv, av, bv)) == pytest.approx(losses.laplace_kl_loss_grad(float(xv), float(av), float(bv)),
                                                        rel=1e-12, abs=1e-15)


def test_derived_approximation_matches_labkit():
    _, out = series.derive_behaviour()
    f = sympy.lambdify((series.x, series.alpha, series.beta), out["approx"], "numpy")
    rng = np.random.default_rng(3)
    xs, al, be = rng.normal(0, 3, 500), rng.uniform(0.2, 3, 500), rng.uniform(0.2, 3, 500)
    np.testing.assert_allclose(f(xs, al, be), losses.laplace_kl_loss_approx(xs, al, be), rtol=1e-12)


def test_huber_expr_matches_torch():
    a = 1.3
    f = sympy.lambdify(series.x, series.huber_expr(series.x, a), "numpy")
    xs = torch.linspace(-5, 5, 401, dtype=torch.float64)
    ref = torch.nn.functional.huber_loss(xs, torch.zeros_like(xs), reduction="none", delta=a)
    np.testing.assert_allclose(f(xs.numpy()), ref.numpy(), rtol=1e-14)


@given(x=st.floats(-50, 50), a=st.floats(0.05, 20), b=st.floats(0.05, 20), g=st.floats(0.05, 20))
@settings(max_examples=100)
def test_scaling_laws_hold_for_labkit_losses(x, a, b, g):
    # the parameters that derive_properties found for eqs. 28 and 29, applied to labkit.losses
    found28, found29 = (tuple(sympy.lambdify((series.alpha, series.beta, series.gamma), s.proof)(a, b, g))
                        for s in series.derive_properties()[:2])
    lhs28 = losses.laplace_kl_loss(g * x, a, b)
    assert lhs28 == pytest.approx(losses.laplace_kl_loss(x, *found28), rel=1e-9, abs=1e-12)
    assert g * losses.laplace_kl_loss(x, a, b) == pytest.approx(losses.laplace_kl_loss(x, *found29), rel=1e-9,
                                                                abs=1e-12)


def test_loss_parameters_rejects_non_laplace_loss():
    x = sympy.Symbol("x", real=True)
    with pytest.raises(ValueError, match="not of the form"):
        kl.loss_parameters(x**2, x)


# ---------------------------------------------------------------------------------------------------------------
# Appendix B (bounds.py)
# ---------------------------------------------------------------------------------------------------------------
def test_appendix_b_every_equation_is_a_claim_that_holds():
    proofs = tightness.proofs()
    assert [p.eq for p in proofs] == ["64", "71", "81–82"]
    labels = {c.eq.lstrip("⇒") for p in proofs for c in p.claims} | {p.eq for p in proofs}
    for needed in ("65", "66", "67", "68", "69", "70", "72", "73", "74", "75", "76", "77", "78", "79–80", "83–84",
                   "85", "86", "87", "88–89", "90", "91", "92"):
        assert needed in labels, needed
    assert all(p.held for p in proofs), [str(p) for p in proofs if not p.held]


def test_root_y0_of_f3_prime():
    # the root of 1 − y/2 = e^{−y} in (0, 2), by mpmath's root finder
    root = mpmath.findroot(lambda t: 1 - t / 2 - mpmath.exp(-t), 1.5)
    step = next(c for c in bounds.proposition_2().claims if c.statement.startswith("f_3'(y_0) = 0"))
    (y0,) = step.fact.where
    assert step.held and float(y0) == pytest.approx(float(root), rel=1e-12)


def test_eq_27_numeric_cross_check():
    check = bounds.check_bounds_numerically(200_000, seed=5)
    assert check.violations == 0 and check.n == 200_000
    assert bounds.numeric_claim(10_000).held


def test_require_raises_on_a_failed_step():
    good = Step("1", "1 = 1", sympy.Integer(0), True)
    assert require([good]) == (good,)
    assert good._repr_latex_() == "$$1 = 1 \\qquad (1)$$"
    with pytest.raises(StepFailed, match="1 = 2"):
        require([good, Step("0", "1 = 2", sympy.Integer(1), False)])


def test_is_zero_refuses_non_identities():
    y = sympy.Symbol("y", positive=True)
    assert is_zero(sympy.exp(sympy.log(y)) - y)
    assert not is_zero(sympy.exp(-y) - 1 + y)  # ≥ 0 but not identically 0
    assert not is_zero(sympy.exp(-1) - sympy.Rational(1, 2))


def test_check_bounds_rejects_bad_n():
    with pytest.raises(ValueError, match="n"):
        bounds.check_bounds_numerically(0)


# ---------------------------------------------------------------------------------------------------------------
# notebooks 02 and 03, smoke mode, both kernels at once (each is one process; the machine has two cores)
# ---------------------------------------------------------------------------------------------------------------
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SYMBOLIC_NOTEBOOKS = ("02_laplace_kl_derivation.ipynb", "03_huber_bounds_proofs.ipynb")


def _smoke(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert cell.cell_type == "code" and nb.cells.index(cell) == next(
        i for i, c in enumerate(nb.cells) if c.cell_type == "code"), "the first code cell must be the parameters cell"
    cell.source += '\nSCALE = "smoke"'
    return nb


def test_notebooks_are_stored_clean():
    for name in SYMBOLIC_NOTEBOOKS:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert nb.metadata["kernelspec"] == {"name": "python3", "display_name": "Python 3 (labkit)",
                                             "language": "python"}
        for c in nb.cells:
            if c.cell_type == "code":
                assert c.outputs == [] and c.execution_count is None, name
                assert "sys.path" not in c.source
                assert not re.search(r"^\s*(def|class|lambda)\b", c.source, re.M), name  # thin: no definitions


def test_notebooks_have_exercises_with_folded_answers():
    for name in SYMBOLIC_NOTEBOOKS:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        questions = [c for c in nb.cells if c.cell_type == "markdown" and "exercise" in c.metadata.get("tags", [])]
        checks = [c for c in nb.cells if c.cell_type == "code" and "exercise" in c.metadata.get("tags", [])]
        assert len(questions) >= 2 and len(checks) >= 2, name
        for q in questions:
            assert "**predict**" in q.source.lower() and "<details><summary>Worked answer</summary>" in q.source, name
            assert "</details>" in q.source
        assert all("exercises." in c.source for c in checks), name


def test_notebook_markdown_has_no_raw_notation():
    # subscripts and superscripts only inside $…$ (or code), so they render
    for name in SYMBOLIC_NOTEBOOKS:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        for c in nb.cells:
            if c.cell_type == "markdown":
                prose = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`", "", c.source, flags=re.S)
                assert "_{" not in prose and "^{" not in prose, (name, prose[:200])


def test_notebooks_run_top_to_bottom_in_smoke_mode():
    nbs = [_smoke(nbformat.read(NOTEBOOKS / name, as_version=4)) for name in SYMBOLIC_NOTEBOOKS]
    clients = [nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                                       resources={"metadata": {"path": str(NOTEBOOKS)}}) for nb in nbs]

    async def run_all():
        await asyncio.gather(*(c.async_execute() for c in clients))

    asyncio.run(run_all())
    for name, nb in zip(SYMBOLIC_NOTEBOOKS, nbs):
        pages = [o["data"]["text/html"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
                 if "text/html" in o.get("data", {})]
        proofs = [p for p in pages if 'class="labkit-proof"' in p]
        assert len(proofs) >= 6 if name.startswith("02") else len(proofs) == 4, name  # 03: P1–3 + the shortcut
        assert all("<details" in p for p in proofs)
    html_03 = "".join(o["data"].get("text/html", "") for c in nbs[1].cells if c.cell_type == "code"
                      for o in c.outputs if "data" in o)
    assert "numeric · 10,000 points" in html_03 and "(27)" in html_03 and "violations at 10,000 random points" in html_03
    assert "Make your prediction first." in html_03  # the exercise checks ran with no prediction
