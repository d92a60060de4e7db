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

#: α steps of an offline figure: 10 per decade over 10⁻³ … 10³, round values (0.5, 0.63, 0.79, 1; see
#: :func:`labkit.figures.explorer.slider_alphas`), so 1, 2 and 5 × 10^k (the paper's values) are steps
POSITIONS = 61
#: points per curve in an offline figure (odd: x = 0 is a point); the live views draw 401
POINTS = 201
#: where plotly.js draws a slider's steps: inset 10 px from each end of the rail; and how far below the slider's top
#: the decade labels sit (under the current value and the ticks)
SLIDER_STEP_INSET_PX, DECADE_LABEL_DROP_PX = 10, 70
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


def _rounded(values: np.ndarray, digits: int) -> list[float | None]:
    # a picture, not data: `digits` significant digits keep the embedded steps a third of full precision's size;
    # NaN (a gap between a mark's lines, an absent mark) as null, which plotly draws as a gap and JSON can hold
    return [None if math.isnan(v) else v for v in
            (float(t) for t in np.char.mod(f"%.{digits}g", np.asarray(values, dtype=float)))]


def plotly_slider_figure(frames: Sequence[Sequence[Panel]], labels: Sequence[str], rows: int, cols: int, height: int,
                         *, active: int = 0, prefix: str = "α = ", digits: int = 4,
                         decades: Sequence[tuple[int, str]] | None = None):
    """One plotly figure over a parameter grid, with a native slider (``layout.sliders``): it shows
    ``frames[active]`` (drawn by :func:`labkit.figures.builders.plotly_figure`), and slider step i writes the arrays
    of ``frames[i]`` into the traces and its titles into the subplot titles (one ``Plotly.update``). ``labels[i]``
    names step i (shown after ``prefix``); ``decades`` lists (step, text) to write under the rail (10⁻³ … 10³).
    Arrays travel rounded to ``digits`` significant digits; a trace that is the same in every frame is left out
    of the steps; a panel whose y range is fixed at some step (Figure 2) gets its range per step."""
    if not frames or len(frames) != len(labels):
        raise ValueError(f"frames and labels must be non-empty and of one length, got {len(frames)} and {len(labels)}")
    if not 0 <= active < len(frames):
        raise ValueError(f"active must index frames (0 … {len(frames) - 1}), got active={active!r}")
    fig = builders.plotly_figure(frames[active], rows, cols, height)
    data = [builders.trace_data(frame) for frame in frames]  # per frame, per trace (plotly_figure's order): x, y, texts

    def varies(t: int, part: int) -> bool:
        first = data[0][t][part]
        if part == 2:
            return any(d[t][part] != first for d in data[1:])
        return any(not np.array_equal(first, d[t][part], equal_nan=True) for d in data[1:])

    moving = [t for t in range(len(data[0])) if any(varies(t, part) for part in (0, 1, 2))]
    with_x = any(varies(t, 0) for t in moving)
    with_text = any(varies(t, 2) for t in moving)
    fixed_y = [any(frame[j].ylim is not None for frame in frames) for j in range(len(frames[0]))]
    steps = []
    for frame, traces, label in zip(frames, data, labels):
        update: dict[str, Any] = {"y": [_rounded(traces[t][1], digits) for t in moving]}
        if with_x:
            update["x"] = [_rounded(traces[t][0], digits) for t in moving]
        if with_text:
            update["text"] = [builders.plotly_texts(traces[t][2]) if traces[t][2] is not None else None
                              for t in moving]
        layout: dict[str, Any] = {f"annotations[{j}].text": p.title for j, p in enumerate(frame)}
        for j, p in enumerate(frame):  # a panel whose range is fixed at some step: its range, or autorange
            if fixed_y[j]:
                axis = "yaxis" if j == 0 else f"yaxis{j + 1}"
                layout.update({f"{axis}.range": list(p.ylim)} if p.ylim is not None else
                              {f"{axis}.autorange": True})
        steps.append({"method": "update", "label": label, "args": [update, layout, moving]})
    # every step a tick of one length, its label hidden (plotly would label every n-th step, wherever that falls):
    # the values under the rail are the decades, written at their steps (``decades``)
    fig.update_layout(height=height + 80, margin=dict(b=100),
                      sliders=[dict(active=active, steps=steps, len=1.0, x=0.0,
                                    currentvalue=dict(prefix=prefix, font=dict(color="#444", size=14)),
                                    y=-0.16, yanchor="top", pad=dict(t=10, b=0, l=0, r=0), ticklen=6, minorticklen=6,
                                    font=dict(color="rgba(0,0,0,0)"))])
    for i, text in decades or ():
        frac = i / (len(frames) - 1)
        # plotly.js puts step i at pad.l + stepInset + i/(n − 1)·(length − 2·stepInset), stepInset = 10 px
        fig.add_annotation(text=text, xref="paper", yref="paper", x=frac, y=-0.16, xanchor="center",
                           yanchor="top", xshift=SLIDER_STEP_INSET_PX * (1 - 2 * frac), yshift=-DECADE_LABEL_DROP_PX,
                           showarrow=False, font=dict(size=11, color="#666"))
    return fig


def _decades(values: np.ndarray) -> list[tuple[int, str]]:
    """(position, "10⁻³") of every power of ten among a slider's values."""
    sup = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
    out = []
    for i, v in enumerate(values):
        k = round(math.log10(v))
        if abs(math.log10(v) - k) < 1e-9:
            out.append((i, {0: "1", 1: "10"}.get(k, f"10{str(k).translate(sup)}")))
    return out


def _value(state: dict[str, dict[str, Any]], ref: str | None, default: Any = None) -> Any:
    """The recorded ``value`` of the model ``ref`` ("IPY_MODEL_<id>"), or ``default``."""
    if not isinstance(ref, str):
        return default
    return state.get(ref.removeprefix("IPY_MODEL_"), {}).get("state", {}).get("value", default)


def _beta_controls(beta: float, linked: bool) -> str:
    """Figure 4's β slider and "β = 1/α" box as the live view has them, disabled, with the note."""
    position = math.log10(min(max(beta, builders.BETA_RANGE[0]), builders.BETA_RANGE[1]))
    shown = "1/α" if linked else builders.format_value(beta)
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
    alpha = builders.round_value(builders.check_alpha(float(_value(state, spec.get("alpha"), builders.PAPER_ALPHA))))
    active = int(np.argmin(np.abs(np.log10(alphas) - math.log10(alpha))))
    with_beta = spec.get("beta") is not None
    linked = bool(_value(state, spec.get("link"), True))
    beta = builders.round_value(float(_value(state, spec.get("beta"), 1.0)))
    fixed_beta = None if (not with_beta or linked) else builders.check_beta(beta)
    frames = [view_panels(figure, float(a), fixed_beta, POINTS) for a in alphas]
    fig = plotly_slider_figure(frames, [builders.format_value(a) for a in alphas], rows, cols,
                               int(sizes["plotly"][1] * 90), active=active, decades=_decades(alphas))
    plot = pio.to_html(fig, include_plotlyjs=False, include_mathjax=False, full_html=False, default_width="100%",
                       validate=False, config=PLOTLY_CONFIG)
    drawn = "" if backend == "plotly" else f" (the live lab draws this view with {html.escape(backend)})"
    caption = (f'<p class="labkit-offline-caption" style="color:#666;font-size:13px;margin:2px 0">Offline copy: the '
               f'slider below the plot moves α over {POSITIONS} round values, 10 per decade from 10⁻³ to 10³'
               f'{drawn}.</p>')
    controls = _beta_controls(1.0 / alpha if linked else beta, linked) if with_beta else ""
    body = f'<div class="labkit-offline-twin labkit-figure{figure}-offline">{caption}{controls}{plot}</div>'
    return Twin(body, working=1, disabled=2 if with_beta else 0)
