"""Run Tables 3–5, the label-noise study, the head study or the uncertainty study and print our table beside the
paper's, or the study's verdict (`python -m labkit experiment`).

Examples: ``python -m labkit experiment table3 --scale smoke --seeds 1 --out runs/table3``;
``python -m labkit experiment head-study --scale lab --seeds 20 --out results/head-study-lab --threads 2``;
``python -m labkit experiment uncertainty --scale lab --seeds 10 --out results/uncertainty-lab --threads 2``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from labkit.detection.runs import DeviceUnavailableError
from labkit.experiments.designs import EXPERIMENT_NAMES, SCALE_NAMES, SCALES, Experiment, noise_study
from labkit.experiments.display import best_table, difference_table, paper_table, summary_table
from labkit.experiments.headstudy import HEAD_SCALES, run_head_study
from labkit.experiments.headstudy.display import corners_table
from labkit.experiments.headstudy.endtoend import CORNERS, FINETUNE, run_corners
from labkit.experiments.results import RESULT_FILES
from labkit.experiments.runner import run_experiment
from labkit.experiments.uncertaintystudy import UNCERTAINTY_SCALES, run_uncertainty_study
from labkit.experiments.uncertaintystudy.endtoend import E2E, E2E_REFERENCE, run_uncertainty_e2e

__all__ = ["HEAD_STUDY", "UNCERTAINTY_STUDY", "add_arguments", "run"]

#: the controlled box-regression study (labkit.experiments.headstudy): not an arm-by-arm detector experiment
HEAD_STUDY = "head-study"
#: learned per-box uncertainty against fixed α on the head study's harness (labkit.experiments.uncertaintystudy)
UNCERTAINTY_STUDY = "uncertainty"


def _verdict(results: dict) -> None:
    for key, text in results["verdict"].items():
        print(f"{key}: {text}")


def _corner_tables(results: object) -> None:
    for metric in ("oracle_loc_err", "loc_err", "AP75"):
        print(corners_table(results, metric).to_text(), end="\n\n")


def _e2e_tables(results: object) -> None:
    print(summary_table(results).to_text(), end="\n\n")
    print(difference_table(results, E2E_REFERENCE, ("oracle_loc_err", "loc_err", "AP75")).to_text(), end="\n\n")


#: the studies with their own scales: (scales, run function, what to print, files written beside the result files)
_STUDIES = {HEAD_STUDY: (HEAD_SCALES, run_head_study, _verdict, ("head_study.png",)),
            CORNERS: (FINETUNE, run_corners, _corner_tables, ()),
            E2E: (FINETUNE, run_uncertainty_e2e, _e2e_tables, ()),
            UNCERTAINTY_STUDY: (UNCERTAINTY_SCALES, run_uncertainty_study, _verdict,
                                ("differences.csv", "uncertainty_study.png"))}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", choices=(*EXPERIMENT_NAMES, HEAD_STUDY, CORNERS, UNCERTAINTY_STUDY, E2E),
                        help="which table (or the noise study, the head study, its end-to-end corners, the "
                             "uncertainty study or its end-to-end check) to run")
    parser.add_argument("--scale", choices=SCALE_NAMES, default="smoke",
                        help="smoke (seconds, CI), quick (a class period; too short to judge α), lab (synthetic data "
                             "on a CPU, run to its plateau), coco (the paper's schedule, GPUs)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the scale's; quick: 3, lab: 5)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/<experiment>-<scale>)")
    parser.add_argument("--data", type=Path, default=None, help="dataset root (required for --scale coco)")
    reuse = parser.add_mutually_exclusive_group()
    reuse.add_argument("--no-reuse", action="store_true",
                       help="retrain runs that already have metrics (default: reuse those made by this commit)")
    reuse.add_argument("--reuse-any", action="store_true",
                       help="also reuse finished runs made by other commits (each row records its own commit)")
    parser.add_argument("--label-noises", type=float, nargs="+", default=None, metavar="B1",
                        help="noise study only: injected label noise b1 values (default: the scale's grid)")
    parser.add_argument("--label-scales", nargs="+", default=None, metavar="ALPHA_SIGMA",
                        help="noise study only: label scales α·σ to sweep, e.g. 1/40 1/20 (default: the scale's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (1 is fastest on a busy shared CPU)")


def run(args: argparse.Namespace) -> int:
    """Run one experiment and print our table (and the paper's, for the tables)."""
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"experiment: --threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.experiment in _STUDIES:
        return _study(args)
    out = args.out or Path("runs") / f"{args.experiment}-{args.scale}"
    experiment: str | Experiment = args.experiment
    if args.label_noises is not None or args.label_scales is not None:
        if args.experiment != "noise-study":
            raise SystemExit("experiment: --label-noises/--label-scales apply to noise-study only")
        grid = SCALES[args.scale]
        experiment = noise_study(grid.label_noises if args.label_noises is None else args.label_noises,
                                 grid.label_scales if args.label_scales is None else args.label_scales)
    start = time.perf_counter()
    try:
        results = run_experiment(experiment, scale=args.scale, seeds=args.seeds, out=out, device=args.device,
                                 data=args.data, progress=True,
                                 reuse="never" if args.no_reuse else "any" if args.reuse_any else "same-commit")
    except (ValueError, FileNotFoundError, FileExistsError, DeviceUnavailableError) as exc:  # bad input: say what, without a traceback
        raise SystemExit(f"experiment: {exc}") from None
    print(summary_table(results).to_text())
    print()
    if results.experiment.get("paper"):
        print(paper_table(results.experiment["paper"]).to_text())
    else:
        print(best_table(results).to_text())
    print(f"wrote {', '.join(str(out / f) for f in RESULT_FILES)} in {time.perf_counter() - start:.0f} s")
    return 0


def _study(args: argparse.Namespace) -> int:
    """The head study, its end-to-end corners or the uncertainty study: their own scales, results and reading."""
    scales, run_study, show, figures = _STUDIES[args.experiment]
    if args.scale not in scales:
        raise SystemExit(f"experiment: {args.experiment} runs at --scale {' or '.join(scales)}, got {args.scale!r}")
    if args.data is not None or args.label_noises is not None or args.label_scales is not None:
        raise SystemExit(f"experiment: --data, --label-noises and --label-scales do not apply to {args.experiment}")
    out = args.out or Path("runs") / f"{args.experiment}-{args.scale}"
    start = time.perf_counter()
    try:
        results = run_study(args.scale, seeds=args.seeds, out=out, device=args.device,
                            reuse="never" if args.no_reuse else "any" if args.reuse_any else "same-commit")
    except (ValueError, FileNotFoundError, FileExistsError, DeviceUnavailableError) as exc:
        raise SystemExit(f"experiment: {exc}") from None
    show(results)
    print(f"wrote {', '.join((*RESULT_FILES, *figures))} in {out} in {time.perf_counter() - start:.0f} s")
    return 0
