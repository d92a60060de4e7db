"""The calculator of notebook 04: noise sliders → λ, α, σ → a framework's config snippet, and the implied densities.

:func:`plot_implied_densities` draws the two Laplace densities of Section 5 (label noise around the ground truth,
prediction noise around the prediction; eqs. 16–17 via :func:`labkit.densities.laplace_pdf`) over an anchor box.
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

from labkit.densities import laplace_pdf
from labkit.interpret import exports
from labkit.interpret.mapping import stage_scales, suggest_stage
from labkit.interpret.presets import get_preset
from labkit.interpret.settings import COORDINATES, STAGES, StageSettings, check_choice, exact

__all__ = ["plot_implied_densities", "figure_png", "Calculator", "calculator"]

#: slider range and step, in % of the anchor size
PERCENT_RANGE = (0.5, 200.0)
PERCENT_STEP = 0.5
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


def plot_implied_densities(label_scales: Sequence[float], prediction_scales: Sequence[float], *,
                           anchor: tuple[float, float] = (1.0, 0.6), ax: Any = None, title: str | None = None):
    """The label-noise and prediction-noise Laplace densities of the box centre, drawn over an anchor box.

    ``label_scales`` / ``prediction_scales``: (x, y, w, h) in anchor sizes (a column of Table 2). The anchor
    (``anchor`` = (w_a, h_a)) is centred at 0; the x-centre densities stand on its bottom edge, the y-centre
    densities on its left edge, each scaled so the taller peak reaches across the box. The dashed boxes show the
    ground truth widened by one label scale of w and h. Returns the matplotlib ``Figure``.
    """
    labels, predictions = _check_scales("label_scales", label_scales), _check_scales("prediction_scales",
                                                                                      prediction_scales)
    w_a, h_a = (float(v) for v in anchor)
    if ax is None:
        from matplotlib.figure import Figure  # no pyplot: nothing registered globally

        ax = Figure(figsize=(8.5, 4.2), layout="constrained").subplots()
    ax.add_patch(_rectangle((-w_a / 2, -h_a / 2), w_a, h_a, edgecolor="black", facecolor="none", lw=2,
                            label="anchor"))
    grow_w, grow_h = labels[2] * w_a, labels[3] * h_a
    ax.add_patch(_rectangle((-(w_a + grow_w) / 2, -(h_a + grow_h) / 2), w_a + grow_w, h_a + grow_h,
                            edgecolor="grey", facecolor="none", ls="--", lw=1, label="± label scale of w, h"))
    styles = (("label noise", labels, "tab:blue"), ("prediction noise", predictions, "tab:orange"))
    s = np.linspace(-1.5, 1.5, 601)
    peak = max(float(laplace_pdf(0.0, 0.0, b)) for b in (labels[0] * w_a, predictions[0] * w_a))
    peak_y = max(float(laplace_pdf(0.0, 0.0, b)) for b in (labels[1] * h_a, predictions[1] * h_a))
    for name, scales, color in styles:
        px = laplace_pdf(s * w_a, 0.0, scales[0] * w_a)
        ax.plot(s * w_a, -h_a / 2 + 0.9 * h_a * px / peak, color=color,
                label=f"{name}: x {100 * scales[0]:.3g}% w_a, y {100 * scales[1]:.3g}% h_a")
        py = laplace_pdf(s * h_a, 0.0, scales[1] * h_a)
        ax.plot(-w_a / 2 + 0.9 * w_a * py / peak_y, s * h_a, color=color, ls=":")
    ax.set_xlim(-1.5 * w_a, 1.5 * w_a)
    ax.set_ylim(-1.5 * h_a, 1.5 * h_a)
    ax.set_aspect("equal")
    ax.set_xlabel("x − x* (image units; anchor width w_a = %g)" % w_a)
    ax.set_ylabel("y − y*")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small")
    ax.set_title(title or "noise implied by the box loss, over the anchor")
    return ax.figure


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
                                                 style={"description_width": "120px"})
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
