"""Section 6 and Appendix C as experiments: Tables 3–5 over seeds, and the label-noise study.

An experiment is data: named *arms* (one box-loss setting each, :class:`Arm`), trained at a *scale*
(:data:`SCALES`: ``smoke`` for CI, ``lab`` for the bundled synthetic data on a CPU, ``coco`` for the paper's
COCO 2014 schedule on GPUs) once per seed, evaluated with COCO AP, and summarised per arm as mean ± 95 % Student-t
interval (:func:`labkit.stats.mean_ci`).

- **Table 3** — the Published, Implemented and Proposed columns of Table 1 (``labkit.interpret.PRESETS``).
- **Table 4** — the Implemented preset with H_α (eq. 37) against D_{α/2,1/α}, its upper bound (eq. 27).
- **Table 5** — the Implemented preset with log size targets (eq. 43) against w*/w_a − 1 (eqs. 93–94).
- **Head study** (:mod:`~labkit.experiments.headstudy`) — a frozen clean detector whose box regressor alone is
  refitted on cached RoI features under known label noise, over a log grid of α·σ and ≥ 20 seeds: where is the
  error least, and does that point track b₁ as eq. 42 reads it? (:func:`run_head_study`).
- **Noise study** — synthetic training labels perturbed by Laplace noise of known scale b₁ (eq. 16, a fraction of
  each box's width/height); the loss's label scale α·σ (eq. 42, in anchor sizes) swept across a grid with λ and
  the prediction scale σ/λ held at the Proposed preset's values. :func:`labkit.interpret.suggest_stage` turns
  each label scale into (λ, α, σ). If the reading of eq. 42 is right, the loss should do best when its label
  scale matches the noise actually in the labels, so the best α·σ should track b₁; :func:`best_label_scales`
  reports where it falls.

The package, one job per module: :mod:`~labkit.experiments.designs` (scales, arms, experiments, the paper's
numbers), :mod:`~labkit.experiments.runner` (training every run; its docs give the cost),
:mod:`~labkit.experiments.results` (``runs.csv``, ``summary.csv``, ``results.json``),
:mod:`~labkit.experiments.analysis` (intervals, best and matched label scales, paired differences),
:mod:`~labkit.experiments.display` (tables, plots, the live :class:`LossCurve`) and
:mod:`~labkit.experiments.cli` (``python -m labkit experiment``). The names in ``__all__`` are the public surface:
``from labkit import experiments as ex; ex.run_experiment("table3", "smoke")``.
"""
from __future__ import annotations

from labkit.experiments.analysis import (REFERENCE_ARMS, arm_differences, best_label_scales, matched_label_scale,
                                         paired_differences)
from labkit.experiments.designs import (COCO_METRICS, EXPERIMENT_NAMES, LOCALIZATION_METRICS, LOWER_IS_BETTER,
                                        METRICS, NOISE_BASE_PRESET, PAPER_TABLE3, PAPER_TABLE4, PAPER_TABLE5,
                                        PAPER_TABLES, SCALE_NAMES, SCALES, Arm, Experiment, Scale,
                                        build_experiment, noise_study, table3, table4, table5)
from labkit.experiments.display import (LossCurve, ResultTable, arms_table, best_table, difference_table,
                                        measured_table, paired_table, paper_table, plot_loss_curves, plot_noise_study,
                                        summary_table, verdict_table)
from labkit.experiments.headstudy import HEAD_SCALES, plot_error_curves, plot_head_study, run_head_study
from labkit.experiments.results import (RUN_COLUMNS, SUMMARY_COLUMNS, Results, load_results, measured_results,
                                        write_results)
from labkit.experiments.runner import REUSE_CHOICES, run_experiment, train_configs

__all__ = [
    "EXPERIMENT_NAMES", "METRICS", "COCO_METRICS", "LOCALIZATION_METRICS", "LOWER_IS_BETTER", "SCALE_NAMES",
    "SCALES", "PAPER_TABLE3", "PAPER_TABLE4", "PAPER_TABLE5", "PAPER_TABLES", "NOISE_BASE_PRESET", "Scale", "Arm",
    "Experiment", "table3", "table4", "table5", "noise_study", "build_experiment",
    "train_configs", "run_experiment", "REUSE_CHOICES",
    "Results", "RUN_COLUMNS", "SUMMARY_COLUMNS", "write_results", "load_results", "measured_results",
    "best_label_scales", "matched_label_scale", "paired_differences", "REFERENCE_ARMS", "arm_differences",
    "ResultTable", "summary_table", "paper_table", "measured_table", "arms_table", "best_table", "paired_table",
    "difference_table", "verdict_table", "plot_noise_study", "plot_loss_curves", "LossCurve",
    "HEAD_SCALES", "run_head_study", "plot_head_study", "plot_error_curves",
]
