"""labkit.symbolic: each derived expression against the paper's closed form (difference simplifies to 0) and against
labkit.losses / torch numerically; every proof step must hold; the two notebooks run top to bottom in smoke mode."""
from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest
import sympy

from labkit import losses
from labkit.symbolic import detector

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
