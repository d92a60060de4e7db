"""What an offline report shows for a live figure of :mod:`labkit.figures.live`: the same figure over a grid of α,
with a slider that works in a page with no kernel.

A live view records in its widget state (``offline_twin``) which figure it shows, its backend and the models of its
controls. :func:`live_figure_twin` reads the controls' recorded values, computes the figure at every position of a
log-spaced α grid with :func:`labkit.figures.live.view_panels` (the function each slider step of the live view
calls) and draws it as one plotly figure whose native slider (``layout.sliders``, :func:`plotly_slider_figure`)
writes each step's arrays into the traces: plotly.js does it, no JavaScript of labkit's. Figure 4's β keeps its
recorded mode (β = 1/α, or the recorded β); the β slider and the "β = 1/α" box are drawn disabled beside the note
that every control a report cannot run carries (:func:`needs_lab`).
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import plotly.io as pio

from labkit.figures import builders
from labkit.figures.builders import ALPHA_RANGE, Panel
from labkit.figures.explorer import slider_alphas
from labkit.figures.live import VIEWS, view_panels

__all__ = ["NEEDS_LAB_CLASS", "PLOTLY_CONFIG", "POINTS", "POSITIONS", "Twin", "live_figure_twin", "needs_lab",
           "plotly_slider_figure"]

#: α steps of an offline figure: 10 per decade over 10⁻³ … 10³, so 1, 2 and 5 × 10^k (the paper's values) are steps
POSITIONS = 61
#: points per curve in an offline figure (odd: x = 0 is a point); the live views draw 401
POINTS = 201
#: plotly's options in a report: no logo linking to plotly.com (a report links only to what it carries)
PLOTLY_CONFIG = {"displaylogo": False}
#: the class of every "needs the live lab" note (the report test looks for it beside each disabled control)
NEEDS_LAB_CLASS = "labkit-needs-lab"


@dataclass(frozen=True)
class Twin:
    """A live view's stand-in: its HTML, and how many of its controls work in the page and how many are drawn
    disabled with a note."""

    html: str
    working: int
    disabled: int


def needs_lab(what: str, tag: str = "span") -> str:
    """The note beside controls a report cannot run: "<what> need(s) the live lab: ``make lab``"."""
    return (f'<{tag} class="{NEEDS_LAB_CLASS}" style="color:#666;font-size:13px">{html.escape(what)} the live lab: '
            f'<code>make lab</code></{tag}>')


def _rounded(values: np.ndarray, digits: int) -> list[float]:
    # a picture, not data: `digits` significant digits keep the embedded steps a third of full precision's size
    return [float(v) for v in np.char.mod(f"%.{digits}g", np.asarray(values, dtype=float))]


def plotly_slider_figure(frames: Sequence[Sequence[Panel]], labels: Sequence[str], rows: int, cols: int, height: int,
                         *, active: int = 0, prefix: str = "α = ", digits: int = 4):
    """One plotly figure over a parameter grid, with a native slider (``layout.sliders``): it shows
    ``frames[active]`` (drawn by :func:`labkit.figures.builders.plotly_figure`), and slider step i writes the arrays
    of ``frames[i]`` into the traces and its titles into the subplot titles (one ``Plotly.update``). ``labels[i]``
    names step i (shown after ``prefix``). Arrays travel rounded to ``digits`` significant digits; a trace that is
    the same in every frame is left out of the steps."""
    if not frames or len(frames) != len(labels):
        raise ValueError(f"frames and labels must be non-empty and of one length, got {len(frames)} and {len(labels)}")
    if not 0 <= active < len(frames):
        raise ValueError(f"active must index frames (0 … {len(frames) - 1}), got active={active!r}")
    fig = builders.plotly_figure(frames[active], rows, cols, height)
    slots = [(i, key) for i, p in enumerate(frames[0]) for key in p.curves]  # plotly_figure's trace order

    def varies(t: int, axis: str) -> bool:
        i, key = slots[t]
        pick = (lambda f: f[i].x) if axis == "x" else (lambda f: f[i].curves[key])
        return any(not np.array_equal(pick(frames[0]), pick(f)) for f in frames[1:])

    moving = [t for t in range(len(slots)) if varies(t, "x") or varies(t, "y")]
    with_x = any(varies(t, "x") for t in moving)
    steps = []
    for frame, label in zip(frames, labels):
        update: dict[str, Any] = {"y": [_rounded(frame[slots[t][0]].curves[slots[t][1]], digits) for t in moving]}
        if with_x:
            update["x"] = [_rounded(frame[slots[t][0]].x, digits) for t in moving]
        titles = {f"annotations[{j}].text": p.title for j, p in enumerate(frame)}
        steps.append({"method": "update", "label": label, "args": [update, titles, moving]})
    fig.update_layout(height=height + 80, margin=dict(b=100),
                      sliders=[dict(active=active, steps=steps, currentvalue=dict(prefix=prefix), len=1.0, x=0.0,
                                    y=-0.16, yanchor="top", pad=dict(t=10, b=0))])
    return fig


def _value(state: dict[str, dict[str, Any]], ref: str | None, default: Any = None) -> Any:
    """The recorded ``value`` of the model ``ref`` ("IPY_MODEL_<id>"), or ``default``."""
    if not isinstance(ref, str):
        return default
    return state.get(ref.removeprefix("IPY_MODEL_"), {}).get("state", {}).get("value", default)


def _beta_controls(beta: float, linked: bool) -> str:
    """Figure 4's β slider and "β = 1/α" box as the live view has them, disabled, with the note."""
    position = math.log10(min(max(beta, builders.BETA_RANGE[0]), builders.BETA_RANGE[1]))
    shown = "1/α" if linked else f"{beta:.3g}"
    return ('<div class="labkit-offline-controls" style="display:flex;gap:14px;align-items:center;flex-wrap:wrap;'
            'font-family:sans-serif;font-size:13px;margin:4px 0">'
            f'<label style="display:flex;gap:6px;align-items:center">β <input type="range" disabled min="-3" max="3" '
            f'step="0.01" value="{position:.3f}" aria-label="β"> <span>{html.escape(shown)}</span></label>'
            f'<label><input type="checkbox" disabled{" checked" if linked else ""} aria-label="β = 1/α"> β = 1/α</label>'
            + needs_lab("β and “β = 1/α” need") + "</div>")


def live_figure_twin(spec: dict[str, Any], state: dict[str, dict[str, Any]]) -> Twin:
    """The offline stand-in of a live view whose widget state recorded ``spec`` (its ``offline_twin``); ``state``
    is the notebook's widget state (for the controls' values)."""
    figure, backend = int(spec["figure"]), str(spec.get("backend", "plotly"))
    if figure not in VIEWS:
        raise ValueError(f"offline_twin: figure must be one of {tuple(VIEWS)}, got {figure!r}")
    rows, cols, sizes = VIEWS[figure]
    alphas = slider_alphas(POSITIONS, ALPHA_RANGE)
    alpha = builders.check_alpha(float(_value(state, spec.get("alpha"), builders.PAPER_ALPHA)))
    active = int(np.argmin(np.abs(np.log10(alphas) - math.log10(alpha))))
    with_beta = spec.get("beta") is not None
    linked = bool(_value(state, spec.get("link"), True))
    beta = float(_value(state, spec.get("beta"), 1.0))
    fixed_beta = None if (not with_beta or linked) else builders.check_beta(beta)
    frames = [view_panels(figure, float(a), fixed_beta, POINTS) for a in alphas]
    fig = plotly_slider_figure(frames, [f"{a:.3g}" for a in alphas], rows, cols, int(sizes["plotly"][1] * 90),
                               active=active)
    plot = pio.to_html(fig, include_plotlyjs=False, include_mathjax=False, full_html=False, default_width="100%",
                       validate=False, config=PLOTLY_CONFIG)
    drawn = "" if backend == "plotly" else f" (the live lab draws this view with {html.escape(backend)})"
    caption = (f'<p class="labkit-offline-caption" style="color:#666;font-size:13px;margin:2px 0">Offline copy: the '
               f'slider below the plot moves α over {POSITIONS} log-spaced values from 10⁻³ to 10³{drawn}.</p>')
    controls = _beta_controls(1.0 / alpha if linked else beta, linked) if with_beta else ""
    body = f'<div class="labkit-offline-twin labkit-figure{figure}-offline">{caption}{controls}{plot}</div>'
    return Twin(body, working=1, disabled=2 if with_beta else 0)
