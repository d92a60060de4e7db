"""Figures 1–4 (labkit.figures: builders, live views, the `figures` command of export) and notebook 01.

References: torch's own losses (L1, MSE, Huber) and autograd, scipy.stats densities and quadrature, mpmath for
D_{α,β} (eq. 19) and its derivative (eq. 21), and labkit.losses / labkit.densities for "the figure shows exactly
what the library computes".
"""
from __future__ import annotations

import io

import json
import math
import subprocess
import sys
from pathlib import Path

import mpmath
import numpy as np
import plotly.graph_objects as go
import pytest
import scipy.integrate
import scipy.stats
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.figure import Figure

from labkit.figures import builders, export, live
from labkit.__main__ import main as labkit_main
from labkit.densities import huber_density
from labkit.losses import huber, huber_grad, laplace_kl_loss, laplace_kl_loss_grad

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_huber_and_laplace.ipynb"
BUILDERS = [builders.figure1, builders.figure2, builders.figure3, builders.figure4]
LIVE = [live.live_figure1, live.live_figure2, live.live_figure3, live.live_figure4]


# --------------------------------------------------------------------------------------------------------------
# helpers: read curve data back from what was drawn
# --------------------------------------------------------------------------------------------------------------
def mpl_curves(fig: Figure) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per axes: curve key -> (x, y) of the line carrying that gid (marks left out: see mpl_overlays)."""
    return [{ln.get_gid(): (np.asarray(ln.get_xdata()), np.asarray(ln.get_ydata())) for ln in ax.get_lines()
             if ln.get_gid() in builders.CURVE_LABELS} for ax in fig.axes]


def plotly_curves(fig) -> list[tuple[str, np.ndarray, np.ndarray]]:
    return [(t.meta, np.asarray(t.x, dtype=float), np.asarray(t.y, dtype=float)) for t in fig.data
            if t.meta in builders.CURVE_LABELS]


def torch_ref(fn, x: np.ndarray, **kw) -> np.ndarray:
    t = torch.from_numpy(np.array(x, dtype=np.float64))
    return fn(t, torch.zeros_like(t), reduction="none", **kw).numpy()


def mp_kl(x: float, alpha: float, beta: float) -> float:
    """D_{α,β}(x), eq. 19, in 50-digit arithmetic."""
    with mpmath.workdps(50):
        x, a, b = mpmath.mpf(x), mpmath.mpf(alpha), mpmath.mpf(beta)
        return float((a * mpmath.exp(-abs(x) / a) + abs(x) - a) / b)


def mp_kl_grad(x: float, alpha: float, beta: float) -> float:
    """dD_{α,β}/dx by mpmath's numerical differentiation of eq. 19 (x ≠ 0)."""
    with mpmath.workdps(50):
        a, b = mpmath.mpf(alpha), mpmath.mpf(beta)
        return float(mpmath.diff(lambda t: (a * mpmath.exp(-abs(t) / a) + abs(t) - a) / b, mpmath.mpf(x)))


# --------------------------------------------------------------------------------------------------------------
# static builders
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [1.0, 0.05, 7.5])
def test_figure1_curves_match_torch_losses(alpha):
    fig = builders.figure1(alpha=alpha)
    assert isinstance(fig, Figure)
    (curves,) = mpl_curves(fig)
    x = curves["huber"][0]
    assert x[0] == -builders.x_range(alpha) and x[-1] == builders.x_range(alpha) and 0.0 in x
    np.testing.assert_allclose(curves["l1"][1], torch_ref(F.l1_loss, x), rtol=1e-15)
    np.testing.assert_allclose(curves["l2"][1], 0.5 * torch_ref(F.mse_loss, x), rtol=1e-15)
    np.testing.assert_allclose(curves["huber"][1], torch_ref(F.huber_loss, x, delta=alpha), rtol=1e-12, atol=0)
    np.testing.assert_array_equal(curves["huber"][1], huber(x, alpha))


@pytest.mark.parametrize("alpha", [1.0, 0.01, 100.0])
def test_figure2_curves_match_scipy_densities(alpha):
    (curves,) = mpl_curves(builders.figure2(alpha=alpha))
    x = curves["normal"][0]
    np.testing.assert_allclose(curves["normal"][1], scipy.stats.norm.pdf(x), rtol=1e-12)
    np.testing.assert_allclose(curves["laplace"][1], scipy.stats.laplace.pdf(x), rtol=1e-12)
    np.testing.assert_array_equal(curves["huber_density"][1], huber_density(x, alpha))


@pytest.mark.parametrize("alpha", [1e-2, 0.1, 0.5, 1.0, 2.0, 10.0, 1e2])
def test_figure2_huber_density_integrates_to_one(alpha):
    # quadrature of the plotted function, split at the kinks ±α; the tails decay like exp(−α|x|)
    f = lambda t: huber_density(t, alpha)  # noqa: E731
    inner, _ = scipy.integrate.quad(f, 0.0, alpha, epsabs=1e-13, epsrel=1e-12)
    tail, _ = scipy.integrate.quad(f, alpha, np.inf, epsabs=1e-13, epsrel=1e-12)
    assert 2 * (inner + tail) == pytest.approx(1.0, abs=1e-9)
    # and the curve in the figure is that function
    (curves,) = mpl_curves(builders.figure2(alpha=alpha))
    x, y = curves["huber_density"]
    np.testing.assert_array_equal(y, huber_density(x, alpha))


@pytest.mark.parametrize("alpha", [1.0, 0.003, 40.0])
def test_figure3_bounds_and_shaded_gap(alpha):
    fig = builders.figure3(alpha=alpha)
    (curves,) = mpl_curves(fig)
    x = curves["huber"][0]
    lower, upper, h = curves["kl_lower"][1], curves["kl_upper"][1], curves["huber"][1]
    np.testing.assert_array_equal(lower, laplace_kl_loss(x, alpha, 1 / alpha))
    np.testing.assert_array_equal(upper, laplace_kl_loss(x, alpha / 2, 1 / alpha))
    for i in range(0, x.size, 50):  # eq. 19 in 50 digits
        assert lower[i] == pytest.approx(mp_kl(x[i], alpha, 1 / alpha), rel=1e-12, abs=1e-300)
        assert upper[i] == pytest.approx(mp_kl(x[i], alpha / 2, 1 / alpha), rel=1e-12, abs=1e-300)
    scale = alpha * alpha  # eq. 27 on the plotted data, with a rounding allowance
    assert np.all(lower <= h + 1e-12 * scale) and np.all(h <= upper + 1e-12 * scale)
    (gap,) = [c for c in fig.axes[0].collections if c.get_gid() == "gap"]
    ys = gap.get_paths()[0].vertices[:, 1]
    assert ys.max() == pytest.approx(upper.max()) and ys.min() == pytest.approx(lower.min(), abs=1e-12)


def test_figure4_paper_panels_and_derivatives():
    fig = builders.figure4()
    assert len(fig.axes) == 8
    curves = mpl_curves(fig)
    for col, alpha in enumerate(builders.FIGURE4_ALPHAS):
        beta = 1 / alpha  # our stated default: the paper does not give β
        loss, grad = curves[col], curves[4 + col]
        x = loss["huber"][0]
        assert x[0] == -3.0 and x[-1] == 3.0 and 0.0 in x  # one window for every α: α moves the curves, not the axes
        assert fig.axes[col].get_title() == f"α = {alpha:.3g}, β = {beta:.3g}"
        np.testing.assert_allclose(loss["huber"][1], torch_ref(F.huber_loss, x, delta=alpha), rtol=1e-12)
        np.testing.assert_array_equal(loss["kl"][1], laplace_kl_loss(x, alpha, beta))
        # H'_α against torch autograd of torch's own huber_loss
        t = torch.tensor(x, requires_grad=True)
        F.huber_loss(t, torch.zeros_like(t), reduction="sum", delta=alpha).backward()
        np.testing.assert_allclose(grad["huber_grad"][1], t.grad.numpy(), rtol=1e-12)
        np.testing.assert_array_equal(grad["huber_grad"][1], huber_grad(x, alpha))
        np.testing.assert_array_equal(grad["kl_grad"][1], laplace_kl_loss_grad(x, alpha, beta))
        for i in (3, 100, 250, 399):
            assert grad["kl_grad"][1][i] == pytest.approx(mp_kl_grad(x[i], alpha, beta), rel=1e-10)


@given(log_alpha=st.floats(-3.0, 3.0))
def test_every_slider_alpha_gives_readable_panels_that_obey_eq27(log_alpha):
    alpha = 10.0 ** log_alpha
    (panel,) = builders.figure3_panels(alpha, n_points=61)
    x, c = panel.x, panel.curves
    assert x[0] == -x[-1] and 3 * alpha * (1 - 1e-12) <= x[-1] < 7.5 * alpha
    slack = 1e-12 * alpha * alpha
    assert np.all(c["kl_lower"] <= c["huber"] + slack) and np.all(c["huber"] <= c["kl_upper"] + slack)
    # Figure 4 with β = 1/α on [−3, 3]: |H'| = min(α, 3) at the ends, |D'| < 1/β = α (eq. 21) and ≤ |H'| there
    grad = builders.figure4_panels(alpha, n_points=61)[1].curves
    assert np.max(np.abs(grad["huber_grad"])) == pytest.approx(min(alpha, 3.0))
    assert np.max(np.abs(grad["kl_grad"])) <= min(alpha, 3.0) * (1 + 1e-12)


@pytest.mark.parametrize("alpha, half_width", [(1.0, 3.0), (0.01, 0.03), (100.0, 300.0), (0.5, 1.5), (2.0, 6.0),
                                               (1.2, 6.0), (2.01, 15.0), (0.0011, 0.006), (7.0, 30.0), (1e3, 3e3)])
def test_x_range_steps_through_1_2_5(alpha, half_width):
    assert builders.x_range(alpha) == pytest.approx(half_width, rel=1e-12)


def test_figure4_explicit_beta_and_x_max():
    fig = builders.figure4(alphas=(0.5, 3.0), beta=(2.0, 0.1), x_max=5.0)
    curves = mpl_curves(fig)
    assert len(curves) == 4
    for col, (alpha, beta) in enumerate([(0.5, 2.0), (3.0, 0.1)]):
        x, y = curves[col]["kl"]
        assert x[0] == -5.0 and x[-1] == 5.0
        np.testing.assert_array_equal(y, laplace_kl_loss(x, alpha, beta))


panels_of = {builders.figure1: builders.figure1_panels, builders.figure2: builders.figure2_panels,
             builders.figure3: builders.figure3_panels, builders.figure4: builders.figure4_panels}


@pytest.mark.parametrize("build", BUILDERS)
def test_plotly_and_matplotlib_draw_the_same_data(build):
    pfig = build(backend="plotly")
    assert isinstance(pfig, go.Figure)
    drawn = mpl_curves(build())
    traces = plotly_curves(pfig)
    expected = [(key, *xy) for axes in drawn for key, xy in axes.items()]
    assert [t[0] for t in traces] == [e[0] for e in expected]
    for (_, px, py), (_, mx, my) in zip(traces, expected):
        np.testing.assert_array_equal(px, mx)
        np.testing.assert_array_equal(py, my)
    # the marks and notes too: plotly's traces and matplotlib's lines and texts come from the same overlays
    overlays = [(t.meta, t.x, t.y, t.text) for t in pfig.data if t.meta not in builders.CURVE_LABELS]
    mfig = build()
    mlines = {(i, ln.get_gid()): ln for i, ax in enumerate(mfig.axes) for ln in ax.get_lines()}
    mtexts = {(i, t.get_gid()): t.get_text().strip() for i, ax in enumerate(mfig.axes) for t in ax.texts}
    slots = [s for s in builders.trace_slots(panels_of[build]()) if s[1] not in builders.CURVE_LABELS]
    assert [k for k, *_ in overlays] == [key for _, key in slots]
    for (i, key), (_, x, y, text) in zip(slots, overlays):
        if text is None:
            np.testing.assert_array_equal(mlines[i, key].get_xdata(), np.asarray(x, dtype=float))
        else:
            assert mtexts[i, key] == text[0].replace("<br>", "\n")


def test_builder_draws_into_given_axes():
    from matplotlib.figure import Figure as Fig

    outer = Fig()
    ax = outer.subplots()
    assert builders.figure1(alpha=2.0, ax=ax) is outer
    assert {ln.get_gid() for ln in ax.get_lines()} == {"l1", "l2", "huber"}
    outer4 = Fig()
    axes = outer4.subplots(2, 2)
    assert builders.figure4(alphas=(1.0, 2.0), ax=axes) is outer4
    with pytest.raises(ValueError, match=r"ax must be None or 6 matplotlib Axes \(2×3\), got 4"):
        builders.figure4(alphas=(1.0, 2.0, 3.0), ax=axes)


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("bad", [0.0, -1.0, 1e-4, 1e4, math.nan, math.inf])
def test_bad_alpha_is_a_clear_value_error(build, bad):
    args = ((bad,),) if build is builders.figure4 else (bad,)
    with pytest.raises(ValueError, match="alpha"):
        build(*args)


@pytest.mark.parametrize("bad", [0.0, -2.0, 1e-4, 2e3, math.nan])
def test_bad_beta_is_a_clear_value_error(bad):
    with pytest.raises(ValueError, match="beta"):
        builders.figure4(alphas=(1.0,), beta=bad)
    with pytest.raises(ValueError, match="beta"):
        live.live_figure4(alpha=1.0, beta=bad)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        builders.figure1(backend="bokeh")
    with pytest.raises(ValueError, match="backend"):
        live.live_figure2(backend="bokeh")
    with pytest.raises(ValueError, match="x_max"):
        builders.figure3(x_max=-1.0)
    with pytest.raises(ValueError, match="n_points"):
        builders.figure2(n_points=2)
    with pytest.raises(ValueError, match="ax is for the matplotlib backend"):
        builders.figure1(backend="plotly", ax=object())
    with pytest.raises(ValueError, match="one per alpha"):
        builders.figure4(alphas=(1.0, 2.0), beta=(1.0,))
    with pytest.raises(TypeError, match="alpha"):
        builders.figure1(alpha="1")
    with pytest.raises(ValueError, match="alpha"):
        live.live_figure1(alpha=0.0)


def test_import_and_build_change_no_global_state():
    # rcParams['backend'] is skipped: reading it resolves the automatic backend, which imports pyplot
    code = (
        "import sys, matplotlib\n"
        "snapshot = lambda: {k: matplotlib.rcParams[k] for k in matplotlib.rcParams if k != 'backend'}\n"
        "before = snapshot()\n"
        "import labkit.figures as f\n"
        "assert not {'matplotlib.figure', 'plotly', 'ipywidgets', 'anywidget'} & set(sys.modules)\n"
        "f.figure4(); f.figure3(backend='plotly')\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert snapshot() == before\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_figure4_marks_where_the_curves_touch_and_part():
    panels = builders.figure4_panels()
    losses, grads = panels[:4], panels[4:]
    for loss, grad, alpha in zip(losses, grads, builders.FIGURE4_ALPHAS):
        (part,), (kink,) = loss.marks, grad.marks
        h, d = loss.curves["huber"], loss.curves["kl"]
        height = max(h.max(), d.max()) - min(h.min(), d.min())
        apart = np.abs(h - d) > builders.TOUCH_FRACTION * height
        if part.at is None:  # L₁-like (α = 0.01) and L₂-like (α = 100): the gap never shows on [−3, 3]
            assert not apart.any() and loss.note.startswith("touch across")
        else:  # they part where the gap first shows, and touch inside
            assert apart[np.searchsorted(loss.x, part.at)] and not apart[np.abs(loss.x) < part.at].any()
            assert 0.3 * alpha < part.at < 1.5 * alpha and f"|x| < {part.at:.2g}" in loss.note
        # H′ saturates at |x| = α: marked while α is inside the window (and not lost in its middle)
        assert kink.at == (alpha if 0.06 < alpha < 3 else None)
    assert [p.marks[0].at is None for p in losses] == [True, False, False, True]


def test_exported_figure4_shows_four_different_pictures(tmp_path):
    """The exported figure4.png: the four loss panels, cut out of the PNG, differ pixel by pixel (on windows of ±3α
    they were one picture under four sets of axis labels)."""
    from PIL import Image

    dpi = 60
    (png,) = [p for p in export.export_figures(tmp_path, formats=("png",), dpi=dpi) if p.name == "figure4.png"]
    image = np.asarray(Image.open(png).convert("L"), dtype=float) / 255.0
    fig = builders.figure4()
    fig.savefig(io.BytesIO(), dpi=dpi)  # lays the figure out as the export did
    height, width = image.shape
    crops = []
    for ax in fig.axes[:4]:
        box = ax.get_position()
        x0, x1 = int(box.x0 * width) + 3, int(box.x1 * width) - 3
        y0, y1 = int((1 - box.y1) * height) + 3, int((1 - box.y0) * height) - 3
        crops.append(np.asarray(Image.fromarray((image[y0:y1, x0:x1] * 255).astype(np.uint8)).resize((120, 80)),
                                dtype=float) / 255.0)
    for i in range(4):
        for j in range(i + 1, 4):
            changed = np.mean(np.abs(crops[i] - crops[j]) > 0.25)
            assert changed > 0.01, f"panels {i} and {j} of the exported Figure 4 look alike ({changed:.3%} differ)"
    # and as data: the loss curves, scaled to their height, have different shapes
    shapes = [p.curves["huber"] / p.curves["huber"].max() for p in builders.figure4_panels()[:4]]
    assert min(np.abs(a - b).max() for k, a in enumerate(shapes) for b in shapes[k + 1:]) > 0.05


@pytest.mark.parametrize("alpha", [0.006, 0.3, 1.0, 40.0])
def test_figure2_window_follows_the_huber_density(alpha):
    (panel,) = builders.figure2_panels(alpha)
    x, y = panel.x, panel.curves["huber_density"]
    assert x[-1] == builders.density_x_range(alpha) >= 4.0 and x[-1] >= min(4.0 / alpha, 4.0)
    assert y[0] < 0.1 * y.max()  # the window reaches the tails ...
    lo, hi = panel.y_span()
    assert y.max() > 0.35 * (hi - lo)  # ... and the density fills its axis: not a flat line
    if panel.ylim is not None:  # the standard densities' peaks are cut off, and the note says how high they go
        assert "0.40" in panel.note and "0.50" in panel.note
    else:
        assert panel.note == "" and alpha >= 0.5


def test_live_figure2_matplotlib_returns_to_autoscale():
    view = live.live_figure2(backend="matplotlib")
    ax = view.figure.axes[0]
    view.alpha_slider.value = 0.006
    assert ax.get_ylim() == pytest.approx(view.panels[0].ylim)
    note = [t for t in ax.texts if t.get_gid() == "note"][0]
    assert "above this axis" in note.get_text()
    view.alpha_slider.value = 2.0
    assert ax.get_ylim()[1] >= 0.5 and note.get_text() == ""  # the Laplace peak (0.5) in view again


def test_offline_twin_follows_the_live_view():
    """The report's stand-in of a live view: round α steps with the decades written under the slider, Figure 2's y
    range per step, Figure 4's marks and note per step."""
    from labkit.lab.report import twins

    alphas = twins.slider_alphas(twins.POSITIONS)
    assert 0.5 in alphas and 0.501 not in alphas and all(float(f"{a:.2g}") == a for a in alphas)
    frames = {n: [live.view_panels(n, float(a), None, 41) for a in alphas] for n in (2, 4)}
    labels = [builders.format_value(a) for a in alphas]
    fig2 = twins.plotly_slider_figure(frames[2], labels, 1, 1, 300, decades=twins._decades(alphas))
    steps = fig2.layout.sliders[0].steps
    assert [a.text for a in fig2.layout.annotations[1:]] == ["10⁻³", "10⁻²", "10⁻¹", "1", "10", "10²", "10³"]
    assert steps[0].args[1]["yaxis.range"] == list(frames[2][0][0].ylim) and steps[-1].args[1]["yaxis.autorange"]
    assert steps[list(alphas).index(0.5)].label == "0.5"
    fig4 = twins.plotly_slider_figure(frames[4], labels, 1, 2, 300)
    slots = builders.trace_slots(frames[4][0])
    step = fig4.layout.sliders[0].steps[list(alphas).index(2.0)]
    update, _, moving = step.args
    note = update["text"][moving.index(slots.index((0, "note")))]
    assert note == ["touch for |x| < 1,<br>part beyond"]


# --------------------------------------------------------------------------------------------------------------
# live views: slider.value in plain Python, no kernel
# --------------------------------------------------------------------------------------------------------------
EXPECTED = {  # curve key -> reference value at (x, α, β)
    "l1": lambda x, a, b: np.abs(x),
    "l2": lambda x, a, b: 0.5 * x * x,
    "huber": lambda x, a, b: huber(x, a),
    "normal": lambda x, a, b: scipy.stats.norm.pdf(x),
    "laplace": lambda x, a, b: scipy.stats.laplace.pdf(x),
    "huber_density": lambda x, a, b: huber_density(x, a),
    "kl_lower": lambda x, a, b: laplace_kl_loss(x, a, 1 / a),
    "kl_upper": lambda x, a, b: laplace_kl_loss(x, a / 2, 1 / a),
    "kl": lambda x, a, b: laplace_kl_loss(x, a, b),
    "huber_grad": lambda x, a, b: huber_grad(x, a),
    "kl_grad": lambda x, a, b: laplace_kl_loss_grad(x, a, b),
}


def window(key: str, alpha: float) -> float:
    """The half-width of the window a curve is drawn on: Figure 4 keeps [−3, 3], Figure 2 follows the Huber
    density's scale, Figures 1 and 3 follow α in 1–2–5 steps."""
    if key in ("huber_grad", "kl_grad", "kl"):
        return builders.FIGURE4_X_MAX
    if key in ("normal", "laplace", "huber_density"):
        return builders.density_x_range(alpha)
    return builders.x_range(alpha)


def check_shown(view: live.LiveFigure, alpha: float, beta: float | None) -> None:
    if view.backend == "plotly":
        shown = plotly_curves(view.figure)
    else:
        shown = [(k, x, y) for axes in mpl_curves(view.figure) for k, (x, y) in axes.items()]
    # a plotly slider step ships float32 arrays (labkit.figures.live): tolerance by dtype
    rtol = 1e-6 if view.backend == "plotly" else 1e-12
    figure4 = any(k == "kl" for k, _, _ in shown)
    for key, x, y in shown:
        assert x[-1] == pytest.approx(builders.FIGURE4_X_MAX if figure4 else window(key, alpha), rel=rtol)
        np.testing.assert_allclose(y, EXPECTED[key](np.asarray(x, dtype=float), alpha, beta), rtol=rtol,
                                   atol=1e-30, err_msg=key)


@pytest.mark.parametrize("backend", builders.BACKENDS)
@pytest.mark.parametrize("make_view", LIVE)
def test_slider_updates_the_same_figure_in_place(make_view, backend):
    view = make_view(backend=backend)
    figure = view.figure
    artists = list(figure.data) if backend == "plotly" else [ln for ax in figure.axes for ln in ax.get_lines()]
    check_shown(view, view.alpha_slider.value, view._beta())
    # 0.015 → 0.02 and 37 → 45 keep the x-range (plotly then restyles y alone), the others change it
    for alpha in (0.015, 0.02, 37.0, 45.0):
        view.alpha_slider.value = alpha
        assert view.alpha_slider.value == pytest.approx(alpha)
        beta = 1 / view.alpha_slider.value if make_view is live.live_figure4 else None
        check_shown(view, view.alpha_slider.value, beta)
    # nothing rebuilt: same figure, same traces / lines
    assert view.figure is figure
    now = list(figure.data) if backend == "plotly" else [ln for ax in figure.axes for ln in ax.get_lines()]
    assert all(a is b for a, b in zip(artists, now)) and len(artists) == len(now)


def test_plotly_live_sends_x_only_when_the_range_steps():
    view = live.live_figure1(alpha=0.5)
    sent: list[set[str]] = []
    view.figure.observe(lambda change: change["new"] and sent.append(set(change["new"]["restyle_data"])),
                        names="_py2js_restyle")
    view.alpha_slider.value = 0.4  # x_range(0.4) = x_range(0.5) = 1.5
    view.alpha_slider.value = 0.8  # x_range = 3
    assert sent == [{"y"}, {"x", "y"}]
    check_shown(view, view.alpha_slider.value, None)


def test_plotly_live_figure4_moves_its_marks_and_note_in_one_message():
    view = live.live_figure4(alpha=0.5)
    sent: list[dict] = []
    view.figure.observe(lambda change: change["new"] and sent.append(change["new"]["restyle_data"]),
                        names="_py2js_restyle")
    view.alpha_slider.value = 2.0
    (update,) = sent  # one message: curves' y, the marks' x and the note's text
    slots = builders.trace_slots(view.panels)
    note = update["text"][slots.index((0, "note"))]
    assert note == ["touch for |x| < 1,<br>part beyond"]
    kink = np.asarray(update["x"][slots.index((1, "mark:kink"))], dtype=float)
    np.testing.assert_allclose(kink[[0, 3]], [-2.0, 2.0])
    view.alpha_slider.value = 100.0  # the kink leaves the window, the curves touch across it
    kink = np.asarray(sent[-1]["x"][slots.index((1, "mark:kink"))], dtype=float)
    assert np.isnan(kink).all() and sent[-1]["text"][slots.index((0, "note"))] == ["touch across<br>[−3, 3]"]


def test_figure4_beta_link():
    view = live.live_figure4(alpha=0.5)
    assert isinstance(view.figure, go.FigureWidget)
    assert view.alpha_slider.description == "α"
    assert "labkit-figure4" in view._dom_classes
    assert view.link.value and view.beta_slider.disabled
    view.alpha_slider.value = 4.0
    assert view.beta_slider.value == pytest.approx(0.25)
    check_shown(view, 4.0, 0.25)
    view.link.value = False
    assert not view.beta_slider.disabled
    view.beta_slider.value = 3.0
    check_shown(view, 4.0, 3.0)
    view.alpha_slider.value = 0.1  # unlinked: β stays
    assert view.beta_slider.value == pytest.approx(3.0)
    check_shown(view, 0.1, 3.0)
    view.link.value = True
    assert view.beta_slider.value == pytest.approx(10.0)
    check_shown(view, 0.1, 10.0)
    # the slider spans the range, on a log scale, reads out 2 significant digits, with a usable track
    assert (view.alpha_slider.base, view.alpha_slider.min, view.alpha_slider.max) == (10.0, -3.0, 3.0)
    assert isinstance(view.alpha_slider, type(view.beta_slider))
    assert view.alpha_slider.readout_format == ".2r"
    assert live.SLIDER_PX - live.LABEL_PX - live.READOUT_PX - 2 * live.TRACK_PAD_PX >= 300
    decades = [w for w in view.children[0].children[0].children if isinstance(w, live.widgets.HTML)]
    assert decades and all(f">{t}<" in decades[0].value for t in ("10⁻³", "10⁻¹", "1", "10", "10³"))
    view.link.value = True
    view.alpha_slider.value = 0.501  # the front end's 10^−0.3: the figure uses the readout's 0.5
    assert view.panels[0].title == "α = 0.5, β = 2"


def test_matplotlib_live_gap_follows_alpha():
    view = live.live_figure3(backend="matplotlib")
    assert "labkit-figure3-matplotlib" in view._dom_classes
    view.alpha_slider.value = 20.0
    a = view.alpha_slider.value
    (gap,) = [c for c in view.figure.axes[0].collections if c.get_gid() == "gap"]
    ys = gap.get_paths()[0].vertices[:, 1]
    assert ys.max() == pytest.approx(float(laplace_kl_loss(builders.x_range(a), a / 2, 1 / a)))
    assert view.figure.axes[0].get_title().endswith(f"α = {a:.3g}")


def test_matplotlib_live_view_records_its_image_until_a_front_end_attaches():
    """With no front end (nbclient), the canvas keeps a PNG of the current figure in ipympl's embedded ``_data_url``
    (what an offline report shows); once a view has said "initialized", nothing more is rendered for it."""
    import base64

    from PIL import Image

    view = live.live_figure3(backend="matplotlib")
    canvas = view.canvas

    def recorded() -> bytes:
        prefix, data = canvas._data_url.split(",", 1)
        assert prefix == "data:image/png;base64"
        return base64.b64decode(data)

    first = recorded()
    width, height = Image.open(io.BytesIO(first)).size
    assert (width, height) == tuple(round(v) for v in view.figure.get_size_inches() * view.figure.dpi)
    view.alpha_slider.value = 20.0
    second = recorded()
    assert second != first
    canvas._handle_message(canvas, {"type": "initialized"}, [])
    view.alpha_slider.value = 0.05
    assert recorded() == second


# --------------------------------------------------------------------------------------------------------------
# export, command line, notebook
# --------------------------------------------------------------------------------------------------------------
def test_figures_command_writes_png_svg_pdf(tmp_path, capsys):
    out = tmp_path / "figs"
    assert labkit_main(["figures", "--out", str(out), "--dpi", "30"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"figure{i}.{ext}" for i in range(1, 5) for ext in ("pdf", "png", "svg"))
    for i in range(1, 5):
        assert (out / f"figure{i}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"figure{i}.pdf").read_bytes()[:5] == b"%PDF-"
        assert b"<svg" in (out / f"figure{i}.svg").read_bytes()[:2000]
    assert len(capsys.readouterr().out.splitlines()) == 12


def test_export_rejects_bad_arguments(tmp_path, capsys):
    assert labkit_main(["figures", "--out", str(tmp_path), "--dpi", "0"]) == 2
    assert "dpi must be an integer" in capsys.readouterr().err
    with pytest.raises(ValueError, match="formats"):
        export.export_figures(tmp_path, formats=("jpg",))
    with pytest.raises(ValueError, match="dpi"):
        export.export_figures(tmp_path, dpi=0)
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(ValueError, match="out_dir"):
        export.export_figures(afile)


def test_notebook_01_is_clean_and_runs_in_smoke_mode(tmp_path):
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.metadata["kernelspec"] == {"name": "python3", "display_name": "Python 3 (labkit)", "language": "python"}
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code_cells[0].metadata.get("tags", [])
    assert all(not c.outputs and c.execution_count is None for c in code_cells)
    assert not any("sys.path" in c.source for c in code_cells)
    # papermill-style injection after the parameters cell
    at = nb.cells.index(code_cells[0]) + 1
    nb.cells.insert(at, nbformat.v4.new_code_cell(f"SCALE = 'smoke'\nexport_dir = {json.dumps(str(tmp_path))}"))
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=180,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"figure{i}.png" for i in range(1, 5)]
    widget_views = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                    if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widget_views) >= 6


def test_variance_figure_has_its_own_slider_over_the_noise_mix():
    from labkit.figures.theory import variance_figure
    from labkit.theory import variance_curves
    curves = variance_curves([0.0, 0.5], np.geomspace(0.1, 10.0, 5))
    fig = variance_figure(curves, active=1)
    assert isinstance(fig, go.Figure)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["0 (Laplace)", "0.5"] and fig.layout.sliders[0].active == 1
    # the figure shows the active frame; each step writes its frame's numbers into every trace
    np.testing.assert_allclose(fig.data[0].y, curves.variance["huber"][1])
    first = steps[0].args[0]
    np.testing.assert_allclose(first["y"][1], curves.variance["laplace_kl"][0])
    assert first["x"][2] == [curves.optimum["huber"][0][0]] and "α → 0" in steps[0].args[1]["title.text"]
    assert len(first["y"]) == len(fig.data) == 8
    with pytest.raises(ValueError):
        variance_figure(curves, active=2)
