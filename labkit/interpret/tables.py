"""Tables 1 and 2 regenerated from the presets: exact cells, printed as the paper prints them (w_a/9, 2h_a/5), as
Markdown, aligned text or HTML. Markdown and HTML set subscripts as subscripts (σ<sub>x</sub>, w<sub>a</sub>/9, as
JupyterLab and the offline reports render them); the terminal's aligned text keeps the plain σ_x, w_a/9."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Sequence

from labkit.interpret.mapping import stage_scales
from labkit.interpret.presets import PRESET_NAMES, PRESETS, get_preset
from labkit.interpret.settings import COORDINATES, STAGES, check_choice, fraction_text

__all__ = ["Table", "TABLE2_ROWS", "table1", "table2", "scaled_text", "subscripts"]


def _width(text: str) -> int:
    """Printed width: combining marks (the tilde of x̃) take no column."""
    return sum(not unicodedata.combining(ch) for ch in text)


#: a one-letter name with a braced subscript (D_{α/2,1/α}) or a one-character one that no word character follows
#: (σ_x, w_a/9, H_α); identifiers and file names such as loc_err, n_seeds or b_1.json are left alone
_SUBSCRIPT = re.compile(r"(?<![A-Za-z_])([A-Za-zα-ωΑ-Ω])_(?:\{([^}]+)\}|([A-Za-z0-9α-ωΑ-Ω])(?!\.?\w))")


def subscripts(text: str) -> str:
    """``text`` with its plain subscripts (σ_x, w_a, H_α, D_{α/2,1/α}) as HTML (σ<sub>x</sub>, w<sub>a</sub>,
    H<sub>α</sub>, D<sub>α/2,1/α</sub>), for Markdown and HTML output; plain text keeps them as typed."""
    return _SUBSCRIPT.sub(lambda m: f"{m[1]}<sub>{m[2] or m[3]}</sub>", text)


def scaled_text(value: Fraction, unit: str) -> str:
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
        check_choice("row", row, labels)
        if (preset, stage) not in self.columns:
            valid = ", ".join(f"{p}/{s}" for p, s in self.columns)
            raise ValueError(f"unknown column {preset}/{stage}; valid columns: {valid}")
        return self.rows[labels.index(row)][1][self.columns.index((preset, stage))]

    def text_cells(self) -> list[tuple[str, list[str]]]:
        units = self.units or ("",) * len(self.rows)
        return [(label, [scaled_text(v, u) if u else fraction_text(v) for v in cells])
                for (label, cells), u in zip(self.rows, units)]

    def to_markdown(self) -> str:
        header = "| " + self.row_header + " | " + " | ".join(f"{p} {s}" for p, s in self.columns) + " |"
        rule = "|" + "---|" * (len(self.columns) + 1)
        body = ["| " + subscripts(label) + " | " + " | ".join(map(subscripts, cells)) + " |"
                for label, cells in self.text_cells()]
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
        body = "".join("<tr><th>" + subscripts(label) + "</th>" + "".join(f"<td>{subscripts(c)}</td>" for c in cells)
                       + "</tr>" for label, cells in self.text_cells())
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
    mapping. Rows x*, y*, w*, h* are label scales; x̃, ỹ, w̃, h̃ prediction scales."""
    cols = _columns(get_preset(p).name for p in presets)
    scales = {(p, s): stage_scales(PRESETS[p].stage(s), PRESETS[p].form) for p, s in cols}
    rows = []
    for kind in (0, 1):  # 0: label, 1: prediction
        for i in range(len(COORDINATES)):
            rows.append((TABLE2_ROWS[kind * 4 + i], tuple(scales[c][kind][i] for c in cols)))
    units = ("w_a", "h_a", "w_a", "h_a") * 2
    return Table("Table 2: scales of the label and prediction noise", "box", cols, tuple(rows), units)
