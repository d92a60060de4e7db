"""The calculator of notebook 04: noise sliders → λ, α, σ → a framework's config snippet, and the implied densities.

:func:`plot_implied_densities` draws what the two Laplace noise models of Section 5 mean for a box (label noise
around the ground truth, prediction noise around the prediction; eqs. 16–17): boxes drawn from each around an
anchor, and how far each is off, P(|error| ≤ d), for the box's centre and size.
:class:`Calculator` wraps :func:`labkit.interpret.suggest_stage` and :func:`labkit.interpret.exports.export` in sliders;
setting a slider's ``value`` from Python runs the same update as dragging it, which is how the tests drive it.

The snippet of every framework and the density plot of both stages are kept up to date side by side, each in a
``Stack`` that the framework menu and the plot buttons select through a front-end link (``jslink``): switching
needs no kernel, so both keep working in an offline report, where the noise sliders cannot.
"""
from __future__ import annotations

import html
import io
import re
import struct
from fractions import Fraction
from typing import Any, Sequence

import ipywidgets as widgets
import numpy as np

from labkit.interpret import exports
from labkit.interpret.mapping import stage_scales, suggest_stage
from labkit.interpret.presets import get_preset
from labkit.interpret.settings import COORDINATES, STAGES, StageSettings, check_choice, exact

__all__ = ["plot_implied_densities", "sampled_boxes", "within", "figure_png", "Calculator", "calculator"]

#: slider range and step, in % of the anchor size
PERCENT_RANGE = (0.5, 200.0)
PERCENT_STEP = 0.5
#: a noise slider's width: its 120 px label and readout leave a track of about 330 px
SLIDER_WIDTH = "520px"
#: the framework selector's options: "labkit" prints λ, α, σ themselves
TARGETS = ("labkit",) + exports.FRAMEWORKS
#: snippets written in Python, where a fraction such as 20/9 is the very float it stands for
PYTHON_TARGETS = ("torchvision", "detectron2", "mmdetection")
#: the density plot's PNG pixels per CSS pixel: sharp on high-density screens, scaled down on others
PIXEL_RATIO = 2
# a float literal with more digits than a person reads (2.2222222222222223)
_LONG_FLOAT = re.compile(r"(?<![\w.])(\d+\.\d{7,})(?![\w.])")


def _check_scales(name: str, values: Sequence[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values], dtype=float)
    if arr.shape != (4,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be four finite positive scales (x, y, w, h) in anchor sizes, got {values!r}")
    return arr


#: boxes drawn per kind of noise in the picture, and the seed that draws them (the picture is the same every time)
SAMPLED_BOXES, SAMPLE_SEED = 12, 0
LABEL_COLOR, PREDICTION_COLOR = "tab:blue", "tab:orange"


def within(distance: np.ndarray, scale: float) -> np.ndarray:
    """P(|e| ≤ d) for Laplace noise e of scale b (eq. 16): ∫₋d^d exp(−|t|/b)/(2b) dt = 1 − exp(−d/b)."""
    return 1.0 - np.exp(-np.asarray(distance, dtype=float) / scale)


def sampled_boxes(scales: Sequence[float], anchor: tuple[float, float], n: int = SAMPLED_BOXES,
                  seed: int = SAMPLE_SEED) -> np.ndarray:
    """``n`` boxes (x centre, y centre, w, h) around an anchor (``anchor`` = (w_a, h_a)) centred at 0, each
    coordinate off by Laplace noise of the given (x, y, w, h) scales in anchor sizes (eqs. 16, 42, 53: x, w in
    w_a, y, h in h_a; sizes as w_a·(1 + e), Appendix C's first order, kept above 5 % of the anchor)."""
    w_a, h_a = anchor
    noise = np.random.default_rng(seed).laplace(0.0, np.asarray(scales, dtype=float), size=(n, 4))
    sizes = np.maximum(1.0 + noise[:, 2:], 0.05)
    return np.column_stack([noise[:, 0] * w_a, noise[:, 1] * h_a, sizes[:, 0] * w_a, sizes[:, 1] * h_a])


def _percent_text(scales: np.ndarray) -> str:
    x, y, w, h = (f"{100 * v:.3g} %" for v in scales)
    centre = f"x {x}" if x == y else f"x {x}, y {y}"
    size = f"w {w}" if w == h else f"w {w}, h {h}"
    return f"{centre}, {size}"


def plot_implied_densities(label_scales: Sequence[float], prediction_scales: Sequence[float], *,
                           anchor: tuple[float, float] = (1.0, 0.6), title: str | None = None, fig: Any = None):
    """The label noise and the prediction noise a stage's box loss assumes, around an anchor box.

    ``label_scales`` / ``prediction_scales``: the Laplace scales (eqs. 16–17) of (x, y, w, h) in anchor sizes (a
    column of Table 2). Left: the anchor (``anchor`` = (w_a, h_a)), with boxes drawn from the label noise (where
    the true box may lie, given the label; blue) and from the prediction noise (where a prediction may stray;
    orange, dashed) — :func:`sampled_boxes`. Right: how far off each is, as P(|error| ≤ d) against d for the
    centre (x, y) and the size (w, h) (:func:`within`), the dotted line at d = one scale (63 %). Every curve rises
    from 0 to 1, so neither kind of noise is drawn flat however different the scales. ``fig``: None, or a
    matplotlib ``Figure``/``SubFigure`` to draw the three panels into. Returns the figure (legend below the panels,
    nothing outside the canvas)."""
    labels, predictions = _check_scales("label_scales", label_scales), _check_scales("prediction_scales",
                                                                                      prediction_scales)
    w_a, h_a = (float(v) for v in anchor)
    if fig is None:
        from matplotlib.figure import Figure  # no pyplot: nothing registered globally

        fig = Figure(figsize=(9.0, 4.8), layout="constrained")
    axes = fig.subplot_mosaic([["boxes", "centre"], ["boxes", "size"]], width_ratios=[1.15, 1.0])
    ax = axes["boxes"]
    kinds = (("label noise (where the true box may be, given the label)", labels, LABEL_COLOR, "-"),
             ("prediction noise (where a prediction may stray)", predictions, PREDICTION_COLOR, "--"))
    for name, scales, color, ls in kinds:
        for i, (cx, cy, w, h) in enumerate(sampled_boxes(scales, (w_a, h_a))):
            ax.add_patch(_rectangle((cx - w / 2, cy - h / 2), w, h, edgecolor=color, facecolor="none", lw=0.9,
                                    ls=ls, alpha=0.55,
                                    label=f"{name}: {_percent_text(scales)} of the anchor" if i == 0 else None))
    ax.add_patch(_rectangle((-w_a / 2, -h_a / 2), w_a, h_a, edgecolor="black", facecolor="none", lw=2.2,
                            label=rf"anchor ($w_a$ = {w_a:g}, $h_a$ = {h_a:g})"))
    reach = 0.5 + 2.5 * float(max(labels.max(), predictions.max()))
    half = min(max(reach, 1.0), 3.0)
    ax.set_xlim(-half * w_a, half * w_a)
    ax.set_ylim(-half * max(w_a, h_a), half * max(w_a, h_a))
    ax.set_aspect("equal")
    ax.set_xlabel(r"$x$ (image units)")
    ax.set_ylabel(r"$y$ (image units)")
    ax.set_title(f"{SAMPLED_BOXES} boxes of each kind of noise", fontsize="medium")
    for key, coords, unit in (("centre", (0, 1), "centre"), ("size", (2, 3), "size")):
        ax = axes[key]
        top = 3.0 * float(max(labels[list(coords)].max(), predictions[list(coords)].max()))
        d = np.linspace(0.0, top, 301)
        for name, scales, color, _ in kinds:
            for c, ls in zip(coords, ("-", ":")):
                if c == coords[1] and scales[c] == scales[coords[0]]:
                    continue  # y (or h) has x's (or w's) scale: one curve for both
                ax.plot(d, within(d, scales[c]), color=color, ls=ls, lw=1.8)
            ax.axvline(scales[coords[0]], color=color, ls=":", lw=0.8)
        ax.set_ylim(0, 1.02)
        ax.set_xlim(0, top)
        ax.set_ylabel(r"P(|error| $\leq$ d)")
        ax.grid(True, alpha=0.3)
        ax.set_title(f"how far the {unit} is off (dotted: d = one scale, 63 %)", fontsize="medium")
    axes["size"].set_xlabel(r"d (anchor sizes: $w_a$ for $x$, $w$; $h_a$ for $y$, $h$)")
    fig.legend(*axes["boxes"].get_legend_handles_labels(), loc="outside lower center", ncol=1, fontsize="small",
               frameon=False)
    fig.suptitle(title or "noise implied by the box loss, around the anchor", fontsize="large")
    return fig


def _rectangle(xy, width, height, **kwargs):
    from matplotlib.patches import Rectangle

    return Rectangle(xy, width, height, **kwargs)


def figure_png(fig, scale: int = 1) -> bytes:
    """The figure as PNG bytes (for ``widgets.Image`` or ``IPython.display.Image``), at 90 dpi × ``scale``: show a
    ``scale=2`` PNG at half its pixel size (``Image(..., retina=True)``) for a sharp picture on high-density
    screens."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90 * scale, bbox_inches="tight")
    return buf.getvalue()


def _png_width(png: bytes) -> int:
    return struct.unpack(">I", png[16:20])[0]  # the IHDR chunk's width, right after the 8-byte signature


def readable_numbers(snippet: str, python: bool) -> str:
    """``snippet`` with every long float literal (2.2222222222222223) written so a person can read it: as the
    fraction it is exactly (``20/9``, in Python snippets, where that expression is the same float) or rounded to 6
    significant digits (elsewhere, or when no small fraction gives that float). A trailing comment that only
    repeated the fraction is dropped."""
    def short(match: re.Match) -> str:
        value = float(match.group(1))
        fraction = Fraction(value).limit_denominator(1000)
        if python and fraction.denominator > 1 and fraction.numerator / fraction.denominator == value:
            return f"{fraction.numerator}/{fraction.denominator}"
        return f"{value:.6g}"

    lines = []
    for line in snippet.splitlines():
        line = _LONG_FLOAT.sub(short, line)
        code, _, comment = line.partition("  # ")
        lines.append(code if comment and re.search(rf"(?<![\w/.]){re.escape(comment.strip())}(?![\w/.])", code)
                     else line)
    return "\n".join(lines)


def _snippet_html(text: str, error: bool = False) -> str:
    colour = "color:#b00;" if error else ""
    return (f'<pre class="labkit-snippet" style="{colour}font-family:var(--jp-code-font-family,monospace);'
            f'font-size:12px;line-height:1.4;white-space:pre;overflow-x:auto;margin:4px 0">{html.escape(text)}</pre>')


def _percent(fraction: Fraction) -> float:
    return float(fraction) * 100.0


def _fraction(percent: float) -> Fraction:
    return exact("percent", percent) / 100


class Calculator(widgets.VBox):
    """Sliders for label and prediction noise (% of the anchor size) per stage and coordinate, α per stage, and a
    framework selector; shows λ, α, σ and the framework's snippet, and the implied densities of one stage.

    With ``linked`` on (default) a stage keeps one ratio label/prediction for all coordinates, as one λ and one α
    require: moving a prediction slider sets that ratio, moving a label slider moves its prediction along.
    """

    def __init__(self, preset: str = "proposed", framework: str = "detectron2") -> None:
        start = get_preset(preset)
        check_choice("framework", framework, TARGETS)
        self.form = start.form
        self._busy = False
        self.sliders: dict[tuple[str, str, str], widgets.FloatSlider] = {}
        self.ratio: dict[str, Fraction] = {}
        self.alpha: dict[str, widgets.Text] = {}
        tabs = []
        for stage in STAGES:
            labels, predictions = stage_scales(start.stage(stage), start.form)
            self.ratio[stage] = labels[0] / predictions[0]
            rows = []
            for kind, values in (("label", labels), ("prediction", predictions)):
                for c, v in zip(COORDINATES, values):
                    slider = widgets.FloatSlider(value=_percent(v), min=PERCENT_RANGE[0], max=PERCENT_RANGE[1],
                                                 step=PERCENT_STEP, description=f"{kind} {c} (%)",
                                                 readout_format=".1f", continuous_update=False,
                                                 style={"description_width": "120px"},
                                                 layout=widgets.Layout(width=SLIDER_WIDTH))
                    slider.observe(self._on_slider(stage, kind, c), names="value")
                    self.sliders[stage, kind, c] = slider
                    rows.append(slider)
            alpha = widgets.Text(value=str(start.stage(stage).alpha), description="α", continuous_update=False)
            alpha.observe(lambda _change: self.refresh(), names="value")
            self.alpha[stage] = alpha
            tabs.append(widgets.VBox([alpha, *rows]))
        self.tabs = widgets.Tab(children=tabs, titles=STAGES)
        self.linked = widgets.Checkbox(value=True, description="one label/prediction ratio per stage", indent=False,
                                       layout=widgets.Layout(width="auto"))
        self.framework = widgets.Dropdown(options=TARGETS, value=framework, description="framework")
        self.plot_stage = widgets.ToggleButtons(options=STAGES, value="rpn", description="plot")
        #: one snippet per framework and one density plot per stage, always current; the menu and the buttons pick
        self.snippets = {t: widgets.HTML() for t in TARGETS}
        self.images = {s: widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
                       for s in STAGES}
        self._drawn: dict[str, tuple] = {}
        snippet_stack = widgets.Stack(list(self.snippets.values()), selected_index=TARGETS.index(framework))
        image_stack = widgets.Stack(list(self.images.values()), selected_index=STAGES.index(self.plot_stage.value))
        self._links = (widgets.jslink((self.framework, "index"), (snippet_stack, "selected_index")),
                       widgets.jslink((self.plot_stage, "index"), (image_stack, "selected_index")))
        self.linked.observe(self._on_link, names="value")
        super().__init__([widgets.HBox([self.framework, self.linked]), self.tabs, snippet_stack, self.plot_stage,
                          image_stack])
        self.add_class("labkit-calculator")
        self.refresh()

    @property
    def output(self) -> widgets.HTML:
        """The snippet of the framework the menu shows."""
        return self.snippets[self.framework.value]

    @property
    def image(self) -> widgets.Image:
        """The density plot of the stage the plot buttons show."""
        return self.images[self.plot_stage.value]

    # --- the values the sliders stand for -------------------------------------------------------------------
    def scales(self, stage: str) -> tuple[list[Fraction], list[Fraction]]:
        """(labels, predictions) of ``stage`` in anchor sizes; when linked, predictions follow the stage's ratio
        exactly (the sliders only show them rounded)."""
        labels = [_fraction(self.sliders[stage, "label", c].value) for c in COORDINATES]
        if self.linked.value:
            return labels, [lab / self.ratio[stage] for lab in labels]
        return labels, [_fraction(self.sliders[stage, "prediction", c].value) for c in COORDINATES]

    def settings(self) -> dict[str, StageSettings]:
        """λ, α, σ per stage; raises ``ValueError`` (shown in the widget) when the sliders ask for the impossible."""
        out = {}
        for stage in STAGES:
            labels, predictions = self.scales(stage)
            try:
                out[stage] = suggest_stage(labels, predictions, alpha=self.alpha[stage].value, form=self.form)
            except ValueError as exc:
                raise ValueError(f"{stage}: {exc}") from None
        return out

    def snippet(self, framework: str | None = None) -> str:
        """The settings as ``framework``'s snippet (default: the one the menu shows), numbers made readable."""
        target = self.framework.value if framework is None else check_choice("framework", framework, TARGETS)
        stages = self.settings()
        if target == "labkit":
            return "\n".join(f"{s}: λ = {st.lam}, α = {st.alpha}, σ = ({', '.join(map(str, st.sigmas))})"
                             for s, st in stages.items())
        return readable_numbers(exports.export(stages, target, form=self.form).snippet, target in PYTHON_TARGETS)

    # --- events -------------------------------------------------------------------------------------------
    def _on_slider(self, stage: str, kind: str, coordinate: str):
        def handler(_change) -> None:
            if self._busy:
                return
            if self.linked.value:
                if kind == "prediction":
                    self.ratio[stage] = (_fraction(self.sliders[stage, "label", coordinate].value)
                                         / _fraction(self.sliders[stage, "prediction", coordinate].value))
                self._show_linked_predictions(stage)
            self.refresh()
        return handler

    def _on_link(self, change) -> None:
        if change["new"]:  # re-linking: every coordinate takes the x coordinate's ratio
            for stage in STAGES:
                self.ratio[stage] = (_fraction(self.sliders[stage, "label", "x"].value)
                                     / _fraction(self.sliders[stage, "prediction", "x"].value))
                self._show_linked_predictions(stage)
        self.refresh()

    def _show_linked_predictions(self, stage: str) -> None:
        self._busy = True
        try:
            for c, pred in zip(COORDINATES, self.scales(stage)[1]):
                self.sliders[stage, "prediction", c].value = min(max(_percent(pred), PERCENT_RANGE[0]),
                                                                 PERCENT_RANGE[1])
        finally:
            self._busy = False

    def refresh(self) -> None:
        """Write every framework's snippet and redraw the density plot of each stage whose scales changed."""
        for target, out in self.snippets.items():
            try:
                out.value = _snippet_html(self.snippet(target))
            except (ValueError, TypeError) as exc:
                out.value = _snippet_html(str(exc), error=True)
        for stage, image in self.images.items():
            labels, predictions = self.scales(stage)
            key = (tuple(labels), tuple(predictions))
            if key != self._drawn.get(stage):  # drawing costs more than the rest: only when its scales change
                png = figure_png(plot_implied_densities(labels, predictions, title=f"{stage}: implied noise"),
                                 scale=PIXEL_RATIO)
                image.value, image.width = png, str(_png_width(png) // PIXEL_RATIO)
                self._drawn[stage] = key


def calculator(preset: str = "proposed", framework: str = "detectron2") -> Calculator:
    """The calculator widget, starting from a Table 1 preset's noise scales."""
    return Calculator(preset, framework)
