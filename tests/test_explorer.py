"""labkit.figures.explorer: the family the browser-side Figure 4 draws, checked against independent references
(torch's huber_loss and its autograd for H_α, H'_α; the closed form of eq. 19 in mpmath and its derivative by
mpmath.diff for D_{α,β}, D'_{α,β}), plus the β modes and bad input."""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
import traitlets

from labkit.figures import builders
from labkit.figures.explorer import (ALPHA_POSITIONS, FAMILY_CURVES, FAMILY_MARKS, FAMILY_POINTS, Figure4Explorer,
                                     slider_alphas)

# a small family keeps the tests fast; the default sizes are checked for the buffer layout only
POSITIONS, POINTS = 61, 41  # 10 positions per decade: 1, 2 and 5 × 10^k are positions


def _decode(widget: Figure4Explorer) -> tuple[np.ndarray, np.ndarray]:
    n, p = len(widget.alphas), widget.n_points
    x = np.frombuffer(widget.x_data, dtype=np.float32).reshape(n, p)
    y = np.frombuffer(widget.y_data, dtype=np.float32).reshape(n, 4, p)
    return x, y


def _marks(widget: Figure4Explorer) -> np.ndarray:
    return np.frombuffer(widget.mark_data, dtype=np.float32).reshape(len(widget.alphas), len(FAMILY_MARKS))


def _reference(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """H_α, D_{α,β}, H'_α, D'_{α,β} at x from references that share no code with labkit."""
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    h = torch.nn.functional.huber_loss(t, torch.zeros_like(t), reduction="none", delta=alpha)
    (dh,) = torch.autograd.grad(h.sum(), t)
    mpmath.mp.dps = 30

    def kl(v):  # eq. 19 without its constant: |x|/β + (α/β)·exp(−|x|/α) − α/β
        return abs(v) / beta + (alpha / beta) * mpmath.exp(-abs(v) / alpha) - alpha / beta

    d = [float(kl(mpmath.mpf(float(v)))) for v in x]
    dd = [float(mpmath.diff(kl, mpmath.mpf(float(v)))) if v != 0 else 0.0 for v in x]
    return np.stack([h.detach().numpy(), np.array(d), dh.numpy(), np.array(dd)])


def test_slider_alphas_cover_the_range_and_hit_the_papers_values():
    values = slider_alphas()
    assert len(values) == ALPHA_POSITIONS
    assert values[0] == builders.ALPHA_RANGE[0] and values[-1] == builders.ALPHA_RANGE[1]
    assert np.all(np.diff(values) > 0)
    for alpha in builders.FIGURE4_ALPHAS + (1.0, 0.2, 5.0, 1e-3, 1e3):
        assert alpha in values, alpha
    # round values, as the readout shows them (0.5, not 0.501), still close to uniform in log α
    assert all(float(f"{v:.2g}") == v for v in values)
    steps = np.diff(np.log10(values))
    assert steps.max() < 2.5 * steps.min()  # 2-digit values step unevenly near 1.0 (1, 1.1, 1.3, 1.4)
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        slider_alphas(1)


def test_family_layout_at_default_sizes():
    widget = Figure4Explorer(0.5)
    x, y = _decode(widget)
    assert x.shape == (ALPHA_POSITIONS, FAMILY_POINTS) and y.shape == (ALPHA_POSITIONS, 4, FAMILY_POINTS)
    assert widget.curve_keys == [k for pair in FAMILY_CURVES for k in pair]
    assert widget.alpha == 0.5 and widget.linked and widget.family_beta == "1/α"
    assert np.all(np.isfinite(y))
    assert _marks(widget).shape == (ALPHA_POSITIONS, 2) and len(widget.notes) == ALPHA_POSITIONS


@pytest.mark.parametrize("position", [0, 7, 15, 30])
def test_linked_family_matches_independent_references(position):
    widget = Figure4Explorer(1.0, positions=POSITIONS, n_points=POINTS)
    x, y = _decode(widget)
    alpha = widget.alphas[position]
    # one window for every α, [−3, 3], with x = 0 a grid point
    assert x[position, 0] == -builders.FIGURE4_X_MAX and x[position, -1] == builders.FIGURE4_X_MAX
    assert x[position, POINTS // 2] == 0.0
    expected = _reference(x[position].astype(np.float64), alpha, 1.0 / alpha)
    scale = np.abs(expected).max(axis=1, keepdims=True)
    np.testing.assert_allclose(y[position], expected, rtol=2e-6, atol=2e-6 * scale.max())


def test_unlinked_beta_recomputes_the_family():
    widget = Figure4Explorer(0.5, beta=2.0, positions=POSITIONS, n_points=POINTS)
    assert not widget.linked and widget.beta == 2.0 and widget.family_beta == "2"
    x, before = _decode(widget)
    i = widget.index
    np.testing.assert_allclose(before[i], _reference(x[i].astype(np.float64), widget.alpha, 2.0), rtol=2e-6, atol=1e-6)
    widget.beta = 0.25
    assert widget.family_beta == "0.25"
    x, after = _decode(widget)
    # H_α and H'_α do not depend on β; D and D' do (eqs. 19, 21)
    np.testing.assert_array_equal(after[:, [0, 2]], before[:, [0, 2]])
    np.testing.assert_allclose(after[i], _reference(x[i].astype(np.float64), widget.alpha, 0.25), rtol=2e-6, atol=1e-6)
    widget.linked = True
    assert widget.family_beta == "1/α" and widget.current_beta() == pytest.approx(1.0 / widget.alpha)


def test_marks_and_notes_are_the_panels():
    widget = Figure4Explorer(0.5, positions=POSITIONS, n_points=POINTS)
    marks = _marks(widget)
    for i, alpha in enumerate(widget.alphas):
        loss, grad = builders.figure4_panels(alpha, n_points=POINTS)
        want = [np.nan if m.at is None else m.at for m in (*loss.marks, *grad.marks)]
        np.testing.assert_allclose(marks[i], want, rtol=1e-6)
        assert widget.notes[i] == loss.note
    assert widget.mark_labels == ["", "|x| = α"]


def test_moving_beta_while_linked_does_not_recompute():
    widget = Figure4Explorer(0.5, positions=POSITIONS, n_points=POINTS)
    sent = []
    widget.observe(lambda change: sent.append(change["name"]), names=["y_data"])
    widget.beta = 3.0  # the front end parks the disabled β slider at 1/α
    assert sent == []


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="alpha"):
        Figure4Explorer(0.0)
    with pytest.raises(ValueError, match="beta"):
        Figure4Explorer(0.5, beta=-1.0)
    widget = Figure4Explorer(0.5, positions=POSITIONS, n_points=POINTS)
    with pytest.raises(traitlets.TraitError, match="index must lie in"):
        widget.index = POSITIONS
    with pytest.raises(traitlets.TraitError, match="beta"):
        widget.beta = 1e9
    assert math.isclose(widget.current_beta(0), 1.0 / builders.ALPHA_RANGE[0])
