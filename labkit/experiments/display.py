"""Display of experiments: tables (ours and the paper's), the noise-study plot, and the live loss curve.

:class:`ResultTable` renders as Markdown in a notebook (subscripts set as <sub>) and as aligned text in a terminal
(labels as typed); the plotting functions return matplotlib figures made outside pyplot's registry (a notebook
shows each once, nothing stays open);
:class:`LossCurve` is the one live loss-curve widget, for a single training run or a whole experiment.
"""
from __future__ import annotations

import io
import math
import os
import textwrap
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Mapping, Sequence

from IPython import get_ipython
import numpy as np
from IPython.display import Image, display
from matplotlib.figure import Figure

from labkit.detection.losses import BoxLossConfig
from labkit.experiments.analysis import (BOOTSTRAP_RESAMPLES, arm_differences, best_label_scales, noise_grid,
                                         paired_differences)
from labkit.experiments.designs import (LOCALIZATION_METRICS, LOWER_IS_BETTER, METRIC_LABELS, PAPER_TABLES,
                                        Experiment, Scale, build_experiment)
from labkit.experiments.results import Results, measured_results
from labkit.interpret.tables import subscripts

__all__ = ["ResultTable", "summary_table", "paper_table", "measured_table", "arms_table", "best_table",
           "paired_table", "difference_table", "verdict_table", "plot_noise_study", "plot_loss_curves", "LossCurve",
           "fraction_text", "noise_text"]


@dataclass(frozen=True)
class ResultTable:
    """A small table for display: ``title``, ``header``, ``rows`` of strings, and a ``note`` under it."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""

    def to_markdown(self) -> str:
        """Markdown with the labels' notation set (:func:`_markdown`); :meth:`to_text` keeps it as typed."""
        header, rows = [_markdown(h) for h in self.header], [[_markdown(c) for c in r] for r in self.rows]
        lines = [f"**{_markdown(self.title)}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines + ([f"", f"*{_markdown(self.note)}*"] if self.note else []))

    def to_text(self) -> str:
        grid = [self.header, *self.rows]
        widths = [max(len(r[i]) for r in grid) for i in range(len(self.header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in grid]
        return "\n".join([self.title, *lines] + ([self.note] if self.note else []))

    def _repr_markdown_(self) -> str:
        # in a notebook a narrow column would break "0.038 ± 0.001" at its spaces: bind the interval to its value
        # (the Markdown of files and READMEs, to_markdown, keeps plain spaces)
        return self.to_markdown().replace(" ± ", "\u00a0±\u00a0")

    def __str__(self) -> str:
        return self.to_text()


def _markdown(text: str) -> str:
    """A label as Markdown: subscripts as <sub> (H_α → H<sub>α</sub>, D_{α/2,1/α}, w*/w_a), as Tables 1–2 set
    them (:func:`labkit.interpret.tables.subscripts`), and ``*`` escaped (w* would end the bold title early)."""
    return subscripts(text).replace("*", "\\*")


# ---------------------------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------------------------
def verdict_table(verdicts: Mapping[str, str], key: str = "condition", title: str = "The verdict",
                  note: str = "") -> ResultTable:
    """A study's written verdicts (``results["verdict"]``: setting or condition → text) as a two-column table,
    which a notebook wraps at word boundaries (printed, a long verdict breaks inside words)."""
    if not isinstance(verdicts, Mapping) or not verdicts:
        raise ValueError(f"verdicts must be a non-empty mapping of {key} → text, got {verdicts!r}")
    return ResultTable(title, (key, "verdict"), tuple((str(k), str(v)) for k, v in verdicts.items()), note)


def summary_table(results: Results, percent: bool = True) -> ResultTable:
    """Our measured table: per arm, mean ± 95 % CI of AP50, AP75, AP (in % like the paper when ``percent``), and
    of ``loc_err`` (box units, 3 decimals) when any arm has it."""
    k = 100.0 if percent else 1.0
    order: tuple[str, ...] = ("AP50", "AP75", "AP")
    if any(not math.isnan(s["loc_err"].mean) for s in results.summary):
        order += ("loc_err",)
    rows = []
    for s in results.summary:
        cells = []
        for m in order:
            d = s[m]
            scale, digits = (1.0, 3) if m in LOCALIZATION_METRICS else (k, 1)
            mean = "–" if math.isnan(d.mean) else f"{scale * d.mean:.{digits}f}"
            cells.append(mean + ("" if math.isnan(d.half_width) else f" ± {scale * d.half_width:.{digits}f}"))
        failed = s.get("n_failed", 0)
        rows.append((s["label"], str(s["n_seeds"]) + (f" ({failed} diverged)" if failed else ""), *cells))
    prov = results.provenance
    note = (f"Ours: {results.scale['name']} scale, mean ± 95 % Student-t CI over seeds (no ± with one seed); "
            f"{prov['device']}, commit {str(prov['git_commit'])[:10]}, {prov['date']}.")
    if "loc_err" in order:
        note += " loc_err: mean centre/size error of the true positives at IoU 0.5, in box units (smaller is better)."
    return ResultTable(f"{results.experiment['title']} — measured here", ("arm", "seeds", *order), tuple(rows), note)


def paper_table(name: str) -> ResultTable:
    """The paper's own table ``name`` ("table3", "table4", "table5"): COCO 2014 val, VGG-16, in %."""
    if name not in PAPER_TABLES:
        raise ValueError(f"name must be one of {tuple(PAPER_TABLES)}, got name={name!r}")
    rows = tuple((arm, *("–" if v[m] is None else f"{v[m]:.1f}" for m in ("AP50", "AP75", "AP")))
                 for arm, v in PAPER_TABLES[name].items())
    return ResultTable(f"The paper's {name.replace('table', 'Table ')} (COCO 2014 val, VGG-16, one run each)",
                       ("arm", "AP50", "AP75", "AP"), rows,
                       "The paper's numbers, not ours; '–' = not reported there.")


def measured_table(results_dir: str | os.PathLike, name: str, folder: str | None = None) -> ResultTable:
    """:func:`summary_table` of the committed results of ``name`` under ``results_dir`` (``folder``: as
    :func:`~labkit.experiments.results.measured_results`); when there are none, a table that says so (and how to
    make them)."""
    found = measured_results(results_dir, name, folder)
    if found is not None:
        return summary_table(found)
    return ResultTable(f"No measured {name} results under {results_dir}", ("how to make them",),
                       ((f"python -m labkit experiment {name} --scale lab --seeds 3 --out results/{name}-lab",),))


def fraction_text(value: float) -> str:
    """A label scale α·σ as the grid writes it: 1/40, 1/5 (a fraction with a denominator up to 1000 when one equals
    the value to 1e-12; otherwise 3 significant digits). Noise levels b₁ stay decimals (0.025), as the grid and the
    arms' labels write them (:func:`noise_text`)."""
    f = Fraction(value).limit_denominator(1000)
    return str(f) if abs(float(f) - value) <= 1e-12 * max(1.0, abs(value)) else f"{value:.3g}"


def noise_text(value: float) -> str:
    """An injected noise level b₁ as the grid writes it: 0, 0.025, 0.2."""
    return f"{value:g}"


def _stage_text(config: BoxLossConfig) -> str:
    s = config.settings
    text = f"λ={s.lam} α={s.alpha} σ=({s.sigma_x}, {s.sigma_y}, {s.sigma_w}, {s.sigma_h})"
    return text if config.normaliser == "sampled" else f"{text} ÷ {config.normaliser}"


def arms_table(experiment: str | Experiment, scale: str | Scale = "smoke") -> ResultTable:
    """What each arm trains with: both stages' (λ, α, σ_x, σ_y, σ_w, σ_h), loss form, size target, and for the
    noise study b₁ and α·σ."""
    exp = build_experiment(experiment, scale) if isinstance(experiment, str) else experiment
    rows = tuple((a.label, _stage_text(a.box_losses.rpn), _stage_text(a.box_losses.detection),
                  a.box_losses.detection.form, a.box_losses.detection.size_target,
                  noise_text(a.label_noise), "" if a.label_scale is None else str(a.label_scale)) for a in exp.arms)
    return ResultTable(f"{exp.title}: the arms", ("arm", "proposal (rpn)", "detection", "loss form", "size target",
                                                  "b₁", "α·σ"), rows)


def best_table(results: Results, metric: str = "AP75") -> ResultTable:
    """:func:`~labkit.experiments.analysis.best_label_scales` as a table."""
    rows = tuple((noise_text(b["label_noise"]),
                  "tie" if b["best_label_scale"] is None else fraction_text(b["best_label_scale"]),
                  "–" if b["ratio_to_noise"] is None else f"{b['ratio_to_noise']:.2f}",
                  "–" if math.isnan(b[metric]) else
                  f"{b[metric]:.3f}" + ("" if math.isnan(b["ci95"]) else f" ± {b['ci95']:.3f}")) for b in
                 best_label_scales(results, metric))
    return ResultTable(f"Best swept label scale per injected noise, by mean {metric} ({results.scale['name']} scale)",
                       ("b₁", "best α·σ", "best α·σ / b₁", metric), rows,
                       "Eq. 42 predicts best α·σ / b₁ near 1 when the anchors fit the boxes; the grid limits "
                       "what can be found, and overlapping intervals mean no winner.")


def paired_table(results: Results, metric: str = "loc_err") -> ResultTable:
    """:func:`~labkit.experiments.analysis.paired_differences` as a table, in :func:`difference_table`'s sign
    convention: Δ = this arm − the arm matched to b₁, seed by seed, with its 95 % interval, the family-wise interval
    over every row (Bonferroni) and the verdict that interval gives."""
    rows = []
    diffs = paired_differences(results, metric)
    digits = 4 if metric in LOCALIZATION_METRICS else 3
    for d in diffs:
        diff, fam = d["difference"], d["family"]
        verdict = {"arm": "this arm better", "reference": "matched better", "unresolved": "not resolved",
                   "undefined": "–"}[d["better"]]
        rows.append((noise_text(d["label_noise"]), fraction_text(d["matched_label_scale"]),
                     fraction_text(d["label_scale"]),
                     _signed(diff.mean, digits) + ("" if math.isnan(diff.half_width) else
                                                   f" ± {diff.half_width:.{digits}f}"),
                     f"[{_signed(fam.low, digits)}, {_signed(fam.high, digits)}]", str(diff.n), verdict))
    better = "smaller" if metric in LOWER_IS_BETTER else "larger"
    m = diffs[0]["comparisons"] if diffs else 0
    return ResultTable(
        f"{metric}: each label scale against the one matched to b₁, paired by seed ({results.scale['name']} scale)",
        ("b₁", "matched α·σ", "α·σ", f"Δ {metric} = arm − matched ± 95 % CI", f"family-wise CI (m = {m})", "pairs",
         "verdict (family-wise)"), tuple(rows),
        f"Δ = this arm − the matched arm, seed by seed ({metric}: {better} is better). If eq. 42 holds, every "
        f"verdict reads 'matched better'. The m = {m} rows are read at once (Bonferroni).")


def _signed(value: float, digits: int) -> str:
    return "–" if math.isnan(value) else f"{round(value, digits) + 0.0:+.{digits}f}"  # + 0.0: no "-0.000"


def difference_table(results: Results, reference: str | None = None, metrics: Sequence[str] | None = None
                     ) -> ResultTable:
    """:func:`~labkit.experiments.analysis.arm_differences` as a table: per arm and metric Δ = arm − reference,
    paired by seed, with its 95 % Student-t interval, the family-wise interval over every row of the table
    (Bonferroni) that the verdict reads, and the paired bootstrap interval. AP-type rows in 3 decimals, loc_err and
    loc_iou in 4 (box units)."""
    diffs = arm_differences(results, reference, metrics)
    m, family = diffs[0]["comparisons"], diffs[0]["family"].confidence
    rows = []
    for d in diffs:
        diff, fam, digits = d["difference"], d["family"], 4 if d["metric"] in LOCALIZATION_METRICS else 3
        verdict = {"arm": f"{d['label']} better", "reference": f"{d['reference_label']} better",
                   "unresolved": "no effect this setting can resolve", "undefined": "–"}[d["better"]]
        rows.append((f"{d['label']} − {d['reference_label']}",
                     f"{d['metric']} ({'higher' if d['higher_is_better'] else 'lower'} is better)",
                     _signed(diff.mean, digits) + ("" if math.isnan(diff.half_width) else
                                                   f" ± {diff.half_width:.{digits}f}"),
                     f"[{_signed(fam.low, digits)}, {_signed(fam.high, digits)}]",
                     f"[{_signed(d['bootstrap'][0], digits)}, {_signed(d['bootstrap'][1], digits)}]",
                     str(diff.n), verdict))
    prov = results.provenance
    return ResultTable(
        f"{results.experiment['title']}: each arm − {diffs[0]['reference_label']}, paired by seed "
        f"({results.scale['name']} scale)",
        ("Δ = arm − reference", "metric", "Δ ± 95 % CI (t)", f"family-wise CI (Bonferroni, m = {m})",
         "95 % paired bootstrap", "seeds", "verdict (family-wise)"), tuple(rows),
        f"Seed by seed: same data, same initial weights, same batch order. The verdict reads the family-wise interval: "
        f"the m = {m} rows are read at once, so each is a Student-t interval at {100 * family:.4g} %, and all hold "
        f"together with ≥ 95 %. Bootstrap: percentile, {BOOTSTRAP_RESAMPLES:,} resamples of the seeds; it never "
        f"reaches past the seeds' own range, so with few seeds it is too narrow to read alone. results.json: "
        f"{prov.get('device', '?')}, commit {str(prov.get('git_commit', '?'))[:10]}.")


# ---------------------------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------------------------
def _new_axes(size: tuple[float, float]) -> Any:
    """Axes on a figure outside pyplot's registry: a notebook shows it once (as the returned value), and
    nothing stays open."""
    return Figure(figsize=size, layout="constrained").subplots()


def _seed_values(results: Results, metric: str) -> dict[tuple[float, float], list[float]]:
    """(b₁, α·σ) -> the finished runs' values of ``metric`` (one per seed)."""
    out: dict[tuple[float, float], list[float]] = {}
    for r in results.rows:
        v = r.get(metric)
        if r.get("status", "ok") == "ok" and v is not None and not math.isnan(float(v)) and r.get("label_scale"):
            out.setdefault((float(r["label_noise"]), float(Fraction(r["label_scale"]))), []).append(float(v))
    return out


def plot_noise_study(results: Results, metric: str = "AP75", ax: Any = None) -> Figure:
    """``metric`` against the loss's label scale α·σ, one panel per injected noise b₁ (a shared y axis): the mean
    over seeds with its 95 % CI band, each seed's run as a dot, and a dotted line at α·σ = b₁ (what eq. 42
    matches). Noise levels and scales are written as the grid writes them (b₁ = 0.025, α·σ = 1/40); the legend
    stands beside the panels, outside the data. ``ax``: None, or one matplotlib Axes per b₁. Returns the figure."""
    grid = noise_grid(results, metric)
    seeds = _seed_values(results, metric)
    if ax is None:
        axes = list(Figure(figsize=(2.2 * len(grid) + 2.6, 3.6), layout="constrained")
                    .subplots(1, len(grid), sharey=True, squeeze=False)[0])
    else:
        axes = list(np.ravel(ax)) if not hasattr(ax, "plot") else [ax]
        if len(axes) != len(grid):
            raise ValueError(f"ax must be None or {len(grid)} Axes (one per b₁), got {len(axes)}")
    fig = axes[0].figure
    ticks = sorted({x for points in grid.values() for x, _ in points})
    for i, ((b, points), a) in enumerate(zip(grid.items(), axes)):
        colour = f"C{i}"
        xs = [p[0] for p in points]
        a.plot(xs, [p[1].mean for p in points], "o-", color=colour, label="mean over seeds", zorder=3)
        if all(not math.isnan(p[1].half_width) for p in points):
            a.fill_between(xs, [p[1].low for p in points], [p[1].high for p in points], color=colour, alpha=0.2,
                           lw=0, label="95 % CI of the mean")
        dots = [(x, v) for x in xs for v in seeds.get((b, x), [])]
        if dots:
            a.plot(*zip(*dots), ".", color="0.35", ms=3, alpha=0.7, label="one seed", zorder=2)
        if b > 0:
            a.axvline(b, color="0.3", linestyle=":", linewidth=1.2, label="α·σ = b₁ (eq. 42)")
        a.set_xscale("log")
        a.set_xticks(ticks, [fraction_text(x) for x in ticks])
        a.set_xlim(ticks[0] / 1.4, ticks[-1] * 1.4)  # room for the end points' dots and dotted lines
        a.minorticks_off()
        a.set_title(f"b₁ = {noise_text(b)}", fontsize="medium")
        a.grid(True, alpha=0.3)
    axes[0].set_ylabel(textwrap.fill(f"{METRIC_LABELS[metric]} (validation, clean labels)", 28))
    fig.supxlabel("label scale α·σ of the loss (anchor sizes, eq. 42)", fontsize="medium")
    better = "lower" if metric in LOWER_IS_BETTER else "higher"
    fig.suptitle(f"{metric} against the assumed label noise, per injected noise b₁ ({results.scale['name']} scale;"
                 f" {better} is better)", fontsize="medium")
    handles = {}
    for a in axes:
        for h, label in zip(*a.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(handles.values(), handles.keys(), loc="outside right upper", fontsize="small", frameon=False)
    return fig


def plot_loss_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], ax: Any = None,
                     ylabel: str = "total loss", log: bool = False) -> Figure:
    """Training loss against iteration, one line per entry of ``curves`` (line label -> (iterations, losses)), on
    a log axis when ``log``. Returns the figure."""
    if ax is None:
        ax = _new_axes((6.4, 3.2))
    for name, (its, losses) in curves.items():
        # a short log (a smoke run logs one or two records) as points: a line through one point draws nothing
        ax.plot(its, losses, label=name, linewidth=1, marker="o" if len(its) < 3 else None, markersize=4)
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if curves and len(curves) <= 12:
        ax.legend(fontsize="x-small", ncol=2)
    return ax.figure


class LossCurve:
    """A training ``callback`` that draws loss curves live in a notebook (:func:`plot_loss_curves`), redrawn in
    place every ``every`` iterations. Records carry ``iteration`` and the loss ``keys``; records with a ``"run"``
    (added by :func:`~labkit.experiments.runner.run_experiment`) give one line per run and key, records without it
    are one run. ``keys=LossCurve.KEYS`` follows every loss term of :func:`labkit.detection.engine.train` on a log
    axis. Outside IPython it only collects (:meth:`figure` draws on demand)."""

    #: the total loss and the four terms a training record holds
    KEYS = ("loss", "loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg")

    def __init__(self, every: int = 10, keys: Sequence[str] = ("loss",)) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an int >= 1, got every={every!r}")
        keys = (keys,) if isinstance(keys, str) else tuple(keys)
        if not keys or not all(isinstance(k, str) for k in keys):
            raise ValueError(f"keys must be record keys (strings), got keys={keys!r}")
        self.every, self.keys = every, keys
        #: line label -> (iterations, values): the run's name, the key's, or "<run>: <key>" when both vary
        self.curves: dict[str, tuple[list[float], list[float]]] = {}
        self._handle = None

    def _label(self, run: Any, key: str) -> str:
        if run is None:
            return key
        return str(run) if len(self.keys) == 1 else f"{run}: {key}"

    def __call__(self, record: Mapping[str, Any]) -> None:
        self._add(record)
        if record["iteration"] % self.every == 0 or record["iteration"] == 1:
            self.draw()

    def _add(self, record: Mapping[str, Any]) -> None:
        for key in self.keys:
            its, values = self.curves.setdefault(self._label(record.get("run"), key), ([], []))
            its.append(record["iteration"])
            values.append(float(record.get(key, math.nan)))

    def replay(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Add a finished run's stored records (its ``log.jsonl``) and draw once: how
        :func:`~labkit.experiments.runner.run_experiment` shows a reused run's curve."""
        for record in records:
            self._add(record)
        self.draw()

    def figure(self) -> Figure:
        """The curves so far as a figure (total loss alone on a linear axis, several keys on a log axis)."""
        several = len(self.keys) > 1
        return plot_loss_curves(self.curves, ylabel="loss" if several else "total loss", log=several)

    def draw(self) -> None:
        """Redraw the curves in this cell's output (first call: create the output); outside IPython, nothing."""
        if get_ipython() is None:
            return
        png = io.BytesIO()
        self.figure().savefig(png, format="png", dpi=80)  # PNG: shown whatever the backend
        image = Image(data=png.getvalue(), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)

    def close(self) -> None:
        """Called by :func:`~labkit.experiments.runner.run_experiment` after the last run: draw the finished
        curves."""
        self.draw()
