"""Interpreting Faster R-CNN's box loss (Section 5, Tables 1–2): presets, the implied noise scales, and the inverse.

A stage of Faster R-CNN (the proposal network "rpn" or the detection network "detection") trains its box regression
with (λ/α)·H_α on targets divided by σ (eqs. 37–38, 44). Section 5 reads that loss as the KL loss
D_{label, prediction} between two Laplace distributions in image units (eqs. 36, 42, 52–53):

======================  ==================================================================================
paper                   here
======================  ==================================================================================
λ                       ``lam``: the box-loss weight
α                       ``alpha``: the Huber transition point (the framework's smooth-L1 β, see eq. 37)
σ_x, σ_y, σ_w, σ_h      ``sigma_x`` …: the target scaling of eqs. 38 and 44 (torchvision's weights are 1/σ)
w_a, h_a                the anchor size: every scale below is a multiple of it
label scale             ``label_scale``: the scale of the Laplace label noise, α·σ for the implementation
prediction scale        ``prediction_scale``: the scale of the Laplace prediction noise, σ/λ (implementation)
======================  ==================================================================================

The mapping itself is derived once, in SymPy, by :mod:`labkit.symbolic.detector`; this module only evaluates and
inverts it. Everything is exact: parameters and scales are :class:`fractions.Fraction`.

One consequence worth knowing: a stage has one λ and one α for its four coordinates, so the ratio
label_scale/prediction_scale (= λ·α for the implementation) is the same for x, y, w and h. :func:`suggest_stage`
enforces it and says which coordinate breaks it.
"""
from __future__ import annotations

import functools
import math
import numbers
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Mapping, Sequence, Union

import sympy

from labkit.symbolic import detector

__all__ = [
    "FORMS",
    "STAGES",
    "COORDINATES",
    "PRESET_NAMES",
    "StageSettings",
    "Preset",
    "PRESETS",
    "Table",
    "exact",
    "get_preset",
    "uncertainty_scales",
    "stage_scales",
    "huber_coefficient",
    "table1",
    "table2",
    "Suggestion",
    "suggest",
    "suggest_stage",
]

#: loss readings, from the symbolic module: the released code's (λ/α)·H_α and the publication's λ·H_α (eq. 36)
FORMS: tuple[str, ...] = detector.FORMS
#: the two networks of Faster R-CNN that regress boxes
STAGES = ("rpn", "detection")
#: the four box coordinates; x and w are measured in anchor widths w_a, y and h in anchor heights h_a
COORDINATES = ("x", "y", "w", "h")
PRESET_NAMES = ("published", "implemented", "proposed")

Number = Union[int, Fraction, float, str]


# ---------------------------------------------------------------------------------------------------------------
# exact numbers at the boundary
# ---------------------------------------------------------------------------------------------------------------
def exact(name: str, value: Number) -> Fraction:
    """``value`` as an exact, finite, positive :class:`Fraction`.

    Accepts ints, Fractions, strings such as ``"1/9"`` or ``"0.05"``, and floats (read through their shortest
    decimal form, so ``0.05`` becomes 1/20, not the binary neighbour). Raises naming ``name`` otherwise.
    """
    if isinstance(value, bool) or value is None:
        raise TypeError(f"{name} must be a positive number (int, Fraction, float or a string like '1/9'), "
                        f"got {value!r}")
    if isinstance(value, str):
        try:
            v = Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{name} must be a positive number such as 0.05 or 1/9, got {name}={value!r}") from None
    elif isinstance(value, numbers.Rational):
        v = Fraction(value)
    elif isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f):
            raise ValueError(f"{name} must be finite and > 0, got {name}={value!r}")
        v = Fraction(repr(f))
    else:
        raise TypeError(f"{name} must be a positive number (int, Fraction, float or a string like '1/9'), "
                        f"got {type(value).__name__}")
    if v <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {name}={value!r}")
    return v


def _check_form(form: str) -> str:
    if form not in FORMS:
        raise ValueError(f"form must be one of {', '.join(FORMS)}; got form={form!r}")
    return form


def _check_choice(name: str, value: str, valid: Sequence[str]) -> str:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid {name}s: {', '.join(valid)}")
    return value


# ---------------------------------------------------------------------------------------------------------------
# Table 1 as data
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StageSettings:
    """The box-loss hyper-parameters of one stage (one column of Table 1), exact.

    ``form`` says how the loss is read: ``"implementation"`` — (λ/α)·H_α on σ-scaled targets (eqs. 37–42);
    ``"paper"`` — λ·H_α as the publication states it (eq. 36).
    """

    lam: Fraction
    alpha: Fraction
    sigma_x: Fraction
    sigma_y: Fraction
    sigma_w: Fraction
    sigma_h: Fraction
    form: str = "implementation"

    def __post_init__(self) -> None:
        for name in ("lam", "alpha", "sigma_x", "sigma_y", "sigma_w", "sigma_h"):
            object.__setattr__(self, name, exact(name, getattr(self, name)))
        _check_form(self.form)

    @property
    def sigmas(self) -> tuple[Fraction, Fraction, Fraction, Fraction]:
        """(σ_x, σ_y, σ_w, σ_h), in the order of :data:`COORDINATES`."""
        return (self.sigma_x, self.sigma_y, self.sigma_w, self.sigma_h)

    def sigma(self, coordinate: str) -> Fraction:
        return self.sigmas[COORDINATES.index(_check_choice("coordinate", coordinate, COORDINATES))]


@dataclass(frozen=True)
class Preset:
    """One experiment of Table 1: the settings of both stages."""

    name: str
    rpn: StageSettings
    detection: StageSettings

    def stage(self, name: str) -> StageSettings:
        return getattr(self, _check_choice("stage", name, STAGES))

    @property
    def stages(self) -> dict[str, StageSettings]:
        return {s: self.stage(s) for s in STAGES}


def _stage(lam, alpha, sx, sy, sw, sh, form="implementation") -> StageSettings:
    F = Fraction
    return StageSettings(F(lam), F(alpha), F(sx), F(sy), F(sw), F(sh), form)


#: Table 1 of the paper. The published settings are read as the publication's λ·H_1 (eq. 36); the others are the
#: released code's (λ/α)·H_α on σ-scaled targets (eq. 42).
PRESETS: dict[str, Preset] = {
    "published": Preset("published",
                        rpn=_stage(10, 1, 1, 1, 1, 1, form="paper"),
                        detection=_stage(10, 1, 1, 1, 1, 1, form="paper")),
    "implemented": Preset("implemented",
                          rpn=_stage(1, "1/9", 1, 1, 1, 1),
                          detection=_stage(1, 1, "1/10", "1/10", "1/5", "1/5")),
    "proposed": Preset("proposed",
                       rpn=_stage("1/4", 1, "1/20", "1/20", "1/10", "1/10"),
                       detection=_stage("1/2", 1, "1/20", "1/20", "1/10", "1/10")),
}


def get_preset(name: str) -> Preset:
    """The Table 1 preset called ``name``; unknown names raise listing the valid ones."""
    return PRESETS[_check_choice("preset", name, PRESET_NAMES)]


# ---------------------------------------------------------------------------------------------------------------
# the forward mapping (Table 1 → Table 2)
# ---------------------------------------------------------------------------------------------------------------
def uncertainty_scales(lam: Number, alpha: Number, sigma: Number,
                       form: str = "implementation") -> tuple[Fraction, Fraction]:
    """(label_scale, prediction_scale) implied by λ, α, σ, in units of the anchor size (eqs. 36, 42, 52–53).

    Delegates to :func:`labkit.symbolic.detector.uncertainty_scales`, the SymPy derivation; inputs may also be
    floats or strings (see :func:`exact`).
    """
    _check_form(form)
    return detector.uncertainty_scales(exact("lam", lam), exact("alpha", alpha), exact("sigma", sigma), form=form)


def stage_scales(stage: StageSettings) -> tuple[tuple[Fraction, ...], tuple[Fraction, ...]]:
    """((label x, y, w, h), (prediction x, y, w, h)) of one stage, in anchor sizes: one column of Table 2."""
    pairs = [uncertainty_scales(stage.lam, stage.alpha, s, stage.form) for s in stage.sigmas]
    return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)


def huber_coefficient(stage: StageSettings) -> Fraction:
    """c in the stage's box loss c·H_α(r) on the σ-scaled residual r (λ/α for the implementation, λ for the paper).

    Read off the mapping rather than retyped: D_{L,P}(σr) = σ/(α·P)·D_{α,1/α}(r) exactly (scaling laws eqs. 28–31
    with L = ασ), and H_α ≈ D_{α,1/α} (eq. 25), so c = σ²/(L·P) — the same for every coordinate.
    """
    labels, predictions = stage_scales(stage)
    coefficients = {s * s / (lab * pred) for s, lab, pred in zip(stage.sigmas, labels, predictions)}
    if len(coefficients) != 1:  # would mean the symbolic mapping is not of the form of eq. 42
        raise AssertionError(f"the mapping gives different loss coefficients per coordinate: {coefficients}")
    return coefficients.pop()


# ---------------------------------------------------------------------------------------------------------------
# Tables 1 and 2
# ---------------------------------------------------------------------------------------------------------------
def _fraction_text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _width(text: str) -> int:
    """Printed width: combining marks (the tilde of x̃) take no column."""
    return sum(not unicodedata.combining(ch) for ch in text)


def _scaled_text(value: Fraction, unit: str) -> str:
    """value·unit the way the paper prints it: w_a, w_a/9, 2w_a/5, 3w_a."""
    head = unit if value.numerator == 1 else f"{value.numerator}{unit}"
    return head if value.denominator == 1 else f"{head}/{value.denominator}"


@dataclass(frozen=True)
class Table:
    """A table of exact cells: ``columns`` are (preset, stage) pairs, ``rows`` (label, cells); ``units`` gives the
    unit of each row ("" for plain numbers, ``"w_a"``/``"h_a"`` for Table 2)."""

    title: str
    row_header: str
    columns: tuple[tuple[str, str], ...]
    rows: tuple[tuple[str, tuple[Fraction, ...]], ...]
    units: tuple[str, ...] = field(default=())

    def cell(self, row: str, preset: str, stage: str) -> Fraction:
        labels = [r[0] for r in self.rows]
        _check_choice("row", row, labels)
        if (preset, stage) not in self.columns:
            valid = ", ".join(f"{p}/{s}" for p, s in self.columns)
            raise ValueError(f"unknown column {preset}/{stage}; valid columns: {valid}")
        return self.rows[labels.index(row)][1][self.columns.index((preset, stage))]

    def text_cells(self) -> list[tuple[str, list[str]]]:
        units = self.units or ("",) * len(self.rows)
        return [(label, [_scaled_text(v, u) if u else _fraction_text(v) for v in cells])
                for (label, cells), u in zip(self.rows, units)]

    def to_markdown(self) -> str:
        header = "| " + self.row_header + " | " + " | ".join(f"{p} {s}" for p, s in self.columns) + " |"
        rule = "|" + "---|" * (len(self.columns) + 1)
        body = ["| " + label + " | " + " | ".join(cells) + " |" for label, cells in self.text_cells()]
        return "\n".join([f"**{self.title}**", "", header, rule, *body])

    def to_text(self) -> str:
        """Aligned plain text, for the terminal."""
        grid = [[self.row_header] + [f"{p}/{s}" for p, s in self.columns]]
        grid += [[label] + cells for label, cells in self.text_cells()]
        widths = [max(_width(r[i]) for r in grid) for i in range(len(grid[0]))]
        lines = ["  ".join(c + " " * (w - _width(c)) for c, w in zip(r, widths)).rstrip() for r in grid]
        return "\n".join([self.title, *lines])

    def to_html(self) -> str:
        presets = list(dict.fromkeys(p for p, _ in self.columns))
        top = "".join(f'<th colspan="{sum(1 for q, _ in self.columns if q == p)}">{p}</th>' for p in presets)
        sub = "".join(f"<th>{s}</th>" for _, s in self.columns)
        body = "".join("<tr><th>" + label + "</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
                       for label, cells in self.text_cells())
        return (f"<table><caption>{self.title}</caption><thead><tr><th rowspan=2>{self.row_header}</th>{top}</tr>"
                f"<tr>{sub}</tr></thead><tbody>{body}</tbody></table>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def _columns(presets: Iterable[str]) -> tuple[tuple[str, str], ...]:
    return tuple((p, s) for p in presets for s in STAGES)


def table1(presets: Sequence[str] = PRESET_NAMES) -> Table:
    """Table 1 (the hyper-parameters), regenerated from :data:`PRESETS`."""
    cols = _columns(get_preset(p).name for p in presets)
    names = (("λ", "lam"), ("α", "alpha"), ("σ_x", "sigma_x"), ("σ_y", "sigma_y"), ("σ_w", "sigma_w"),
             ("σ_h", "sigma_h"))
    rows = tuple((label, tuple(getattr(PRESETS[p].stage(s), attr) for p, s in cols)) for label, attr in names)
    return Table("Table 1: hyper-parameters", "parameter", cols, rows)


#: Table 2's rows: the ground truth's coordinates carry the label noise, the prediction's the prediction noise
TABLE2_ROWS = ("x*", "y*", "w*", "h*", "x̃", "ỹ", "w̃", "h̃")


def table2(presets: Sequence[str] = PRESET_NAMES) -> Table:
    """Table 2 (label and prediction noise scales in anchor sizes), regenerated from :data:`PRESETS` through the
    symbolic mapping. Rows x*, y*, w*, h* are label scales; x̃, ỹ, w̃, h̃ prediction scales."""
    cols = _columns(get_preset(p).name for p in presets)
    scales = {(p, s): stage_scales(PRESETS[p].stage(s)) for p, s in cols}
    rows = []
    for kind in (0, 1):  # 0: label, 1: prediction
        for i in range(len(COORDINATES)):
            rows.append((TABLE2_ROWS[kind * 4 + i], tuple(scales[c][kind][i] for c in cols)))
    units = ("w_a", "h_a", "w_a", "h_a") * 2
    return Table("Table 2: scales of the label and prediction noise", "box", cols, tuple(rows), units)


# ---------------------------------------------------------------------------------------------------------------
# the inverse: noise scales → λ, α, σ
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Suggestion:
    """λ, α, σ for one coordinate that imply the requested label and prediction noise scales."""

    lam: Fraction
    alpha: Fraction
    sigma: Fraction


_L, _P = sympy.symbols("label_scale prediction_scale", positive=True)


@functools.lru_cache(maxsize=None)
def _inverse(form: str, fixed: str) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    """(λ, α, σ) as expressions in label_scale, prediction_scale and the fixed parameter, by solving the symbolic
    mapping (eqs. 42, 53 / 36) for the two free parameters."""
    label, prediction = detector.uncertainty_scale_exprs(form)
    params = {"lam": detector.lam, "alpha": detector.alpha, "sigma": detector.sigma}
    unknowns = [params[n] for n in ("lam", "alpha", "sigma") if n != fixed]
    solutions = sympy.solve([label - _L, prediction - _P], unknowns, dict=True)
    if len(solutions) != 1:
        raise AssertionError(f"expected one solution for {unknowns} with {fixed} fixed, got {solutions}")
    sol = solutions[0]
    return tuple(sol.get(params[n], params[n]) for n in ("lam", "alpha", "sigma"))


def _to_fraction(expr: sympy.Expr) -> Fraction:
    r = sympy.nsimplify(expr) if not expr.is_Rational else expr
    if not r.is_Rational:
        raise AssertionError(f"the inverse mapping gave a non-rational value {expr}")
    return Fraction(int(r.p), int(r.q))


def suggest(label_scale: Number, prediction_scale: Number, *, alpha: Number | None = None,
            sigma: Number | None = None, form: str = "implementation") -> Suggestion:
    """λ, α, σ whose loss reads as label noise ``label_scale`` and prediction noise ``prediction_scale`` (both in
    anchor sizes, e.g. 0.05 = 5 % of the anchor), inverting eqs. 42 and 53 (or eq. 36 with ``form="paper"``).

    The mapping has three parameters and two outputs, so exactly one of ``alpha`` or ``sigma`` must be given.
    """
    _check_form(form)
    if (alpha is None) == (sigma is None):
        which = "both were given" if alpha is not None else "neither was given"
        raise ValueError(f"give exactly one of alpha= or sigma= (the mapping leaves one free choice); {which}. "
                         "E.g. alpha=1 keeps the usual smooth-L1 β, sigma=... keeps the box coder's scaling")
    values = {_L: exact("label_scale", label_scale), _P: exact("prediction_scale", prediction_scale)}
    fixed = "alpha" if alpha is not None else "sigma"
    fixed_value = exact(fixed, alpha if alpha is not None else sigma)
    values[{"alpha": detector.alpha, "sigma": detector.sigma}[fixed]] = fixed_value
    subs = {k: sympy.Rational(v.numerator, v.denominator) for k, v in values.items()}
    lam_e, alpha_e, sigma_e = (e.subs(subs) for e in _inverse(form, fixed))
    return Suggestion(_to_fraction(lam_e), _to_fraction(alpha_e), _to_fraction(sigma_e))


def _four(name: str, value) -> tuple:
    if isinstance(value, (str, numbers.Number)) or value is None:
        return (value,) * 4
    if isinstance(value, Mapping):
        missing = [c for c in COORDINATES if c not in value]
        if missing:
            raise ValueError(f"{name} is missing coordinate(s) {', '.join(missing)}; give x, y, w, h")
        return tuple(value[c] for c in COORDINATES)
    value = tuple(value)
    if len(value) != 4:
        raise ValueError(f"{name} must be one number or four (x, y, w, h), got {len(value)} values")
    return value


def suggest_stage(label_scales, prediction_scales, *, alpha=None, sigma=None,
                  form: str = "implementation") -> StageSettings:
    """A whole stage's settings from label and prediction noise per coordinate.

    ``label_scales`` / ``prediction_scales``: one number for all of x, y, w, h, four numbers, or a mapping by
    coordinate. ``alpha`` (one number) or ``sigma`` (one or four numbers): exactly one of them. A stage has a single
    λ and α, so the coordinates must agree on them; if they do not, the error names the coordinates and the ratio
    label/prediction each asked for.
    """
    labels = _four("label_scales", label_scales)
    predictions = _four("prediction_scales", prediction_scales)
    if (alpha is None) == (sigma is None):
        which = "both were given" if alpha is not None else "neither was given"
        raise ValueError(f"give exactly one of alpha= or sigma= (the mapping leaves one free choice); {which}")
    if alpha is not None and not isinstance(alpha, (str, numbers.Number)):
        raise TypeError(f"alpha is one number per stage (one Huber transition for x, y, w, h), got {alpha!r}")
    sigmas = _four("sigma", sigma) if sigma is not None else (None,) * 4
    per = [suggest(lab, pred, alpha=alpha, sigma=s, form=form) for lab, pred, s in zip(labels, predictions, sigmas)]
    for name in ("lam", "alpha"):
        got = {getattr(p, name) for p in per}
        if len(got) > 1:
            ratios = ", ".join(f"{c}: {_fraction_text(exact('label', lab) / exact('prediction', pred))}"
                               for c, lab, pred in zip(COORDINATES, labels, predictions))
            detail = {c: _fraction_text(getattr(p, name)) for c, p in zip(COORDINATES, per)}
            raise ValueError(f"one stage has a single {name}, but the coordinates ask for {detail}. With one λ and one "
                             f"α, label/prediction must be the same for x, y, w, h (λ·α in the implementation's reading); got {ratios}")
    return StageSettings(per[0].lam, per[0].alpha, *(p.sigma for p in per), form=form)


# ---------------------------------------------------------------------------------------------------------------
# command line: python -m labkit interpret
# ---------------------------------------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    parser.description = ("Print the noise scales (Table 2) implied by a Table 1 preset, or by your own λ, α, σ, "
                          "in units of the anchor size.")
    parser.add_argument("--preset", choices=PRESET_NAMES, help="a Table 1 preset (default: all three)")
    parser.add_argument("--lam", help="your own stage: loss weight λ, e.g. 1 or 1/4")
    parser.add_argument("--alpha", help="your own stage: Huber transition α (the smooth-L1 β), e.g. 1/9")
    parser.add_argument("--sigma", nargs="+", metavar="S",
                        help="your own stage: target scaling σ, one value or four (x y w h)")
    parser.add_argument("--form", choices=FORMS, default="implementation",
                        help="(λ/α)·H_α as implemented (default) or λ·H_α as published")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")


def run(args) -> int:
    import sys

    own = [args.lam, args.alpha, args.sigma]
    try:
        if any(v is not None for v in own):
            if any(v is None for v in own) or args.preset:
                raise ValueError("your own stage needs all of --lam, --alpha and --sigma, and no --preset")
            sigmas = _four("--sigma", args.sigma if len(args.sigma) > 1 else args.sigma[0])
            stage = StageSettings(exact("--lam", args.lam), exact("--alpha", args.alpha),
                                  *(exact("--sigma", s) for s in sigmas), form=args.form)
            labels, predictions = stage_scales(stage)
            print(f"λ = {stage.lam}, α = {stage.alpha}, σ = {tuple(map(str, stage.sigmas))}, form {stage.form}")
            for c, lab, pred in zip(COORDINATES, labels, predictions):
                unit = "w_a" if c in "xw" else "h_a"
                print(f"{c}: label noise {_scaled_text(lab, unit)}, prediction noise {_scaled_text(pred, unit)}")
            return 0
        presets = (args.preset,) if args.preset else PRESET_NAMES
        for table in (table1(presets), table2(presets)):
            print(table.to_markdown() if args.markdown else table.to_text())
            print()
        return 0
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
