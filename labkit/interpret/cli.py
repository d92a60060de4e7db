"""Interpret Faster R-CNN's box loss (Section 5): Tables 1–2 for the presets, or the noise your own λ, α, σ imply.

The ``python -m labkit interpret`` command.
"""
from __future__ import annotations

import argparse
import sys

from labkit.interpret.mapping import stage_scales
from labkit.interpret.presets import PRESET_NAMES
from labkit.interpret.settings import COORDINATES, FORMS, IMPLEMENTATION, StageSettings, exact
from labkit.interpret.tables import scaled_text, table1, table2

__all__ = ["add_arguments", "run", "four_values"]


def four_values(name: str, values: list[str]) -> list[str]:
    """One command-line value for all of x, y, w, h, or four; anything else raises naming the option."""
    if len(values) not in (1, 4):
        raise ValueError(f"{name} takes one value or four (x y w h), got {len(values)}")
    return values * 4 if len(values) == 1 else values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Print the noise scales (Table 2) implied by a Table 1 preset, or by your own λ, α, σ, "
                          "in units of the anchor size.")
    parser.add_argument("--preset", choices=PRESET_NAMES, help="a Table 1 preset (default: all three)")
    parser.add_argument("--lam", help="your own stage: loss weight λ, e.g. 1 or 1/4")
    parser.add_argument("--alpha", help="your own stage: Huber transition α (the smooth-L1 β), e.g. 1/9")
    parser.add_argument("--sigma", nargs="+", metavar="S",
                        help="your own stage: target scaling σ, one value or four (x y w h)")
    parser.add_argument("--form", choices=FORMS, default=IMPLEMENTATION,
                        help="(λ/α)·H_α as implemented (default), λ·H_α as published, or (λ/α)·D_{α/2,1/α} (Table 4)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")


def run(args: argparse.Namespace) -> int:
    own = [args.lam, args.alpha, args.sigma]
    try:
        if any(v is not None for v in own):
            if any(v is None for v in own) or args.preset:
                raise ValueError("your own stage needs all of --lam, --alpha and --sigma, and no --preset")
            stage = StageSettings(exact("--lam", args.lam), exact("--alpha", args.alpha),
                                  *(exact("--sigma", s) for s in four_values("--sigma", args.sigma)))
            labels, predictions = stage_scales(stage, args.form)
            print(f"λ = {stage.lam}, α = {stage.alpha}, σ = {tuple(map(str, stage.sigmas))}, form {args.form}")
            for c, lab, pred in zip(COORDINATES, labels, predictions):
                unit = "w_a" if c in "xw" else "h_a"
                print(f"{c}: label noise {scaled_text(lab, unit)}, prediction noise {scaled_text(pred, unit)}")
            return 0
        presets = (args.preset,) if args.preset else PRESET_NAMES
        for table in (table1(presets), table2(presets)):
            print(table.to_markdown() if args.markdown else table.to_text())
            print()
        return 0
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
