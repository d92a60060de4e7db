"""Learned per-box uncertainty against fixed α, on labels with known noise (issue 17's experiment).

The head study's harness (:mod:`labkit.experiments.headstudy`) with a scale output: one clean ``lab`` detector is
trained once on synthetic shapes whose contrast varies and frozen; jittered ground-truth RoIs and their box-head
features are cached; per noise condition (Laplace label noise, eq. 16, of one scale for every box or growing as the
object fades; a fresh draw per seed) the box head's fc7 and predictor are refitted for every arm — fixed scales
(Table 1's Implemented and Proposed detection stages), the learned Laplace KL of eq. 18, the Laplace NLL and
KL-Loss's Gaussian form — and scored on the clean validation boxes with and without variance voting: localization,
NLL, calibration, sharpness, rank correlation with the injected scale, and COCO AP of the detector with the head put
back. Analysed paired by seed against the fixed Implemented arm.

Modules: :mod:`.design` (arms, conditions, scales), :mod:`.fitting` (batched fits), :mod:`.evaluation` (kept and
voted boxes, metrics), :mod:`.detector` (the head back in the detector), :mod:`.report` (files, paired analysis,
verdict), :mod:`.display` (plots, tables), :mod:`.study` (:func:`run_uncertainty_study`), and :mod:`.endtoend`
(the same question end to end: the clean reference fine-tuned with fixed or learned scales, the RPN's included).
Commands: ``python -m labkit experiment uncertainty --scale smoke|lab --seeds N --out DIR`` and
``python -m labkit experiment uncertainty-e2e --scale smoke|lab --out DIR``.
"""
from labkit.experiments.uncertaintystudy.design import (ARMS, FIXED, UNCERTAINTY_SCALES, Arm, NoiseCondition,
                                                        UncertaintyScale)
from labkit.experiments.uncertaintystudy.display import (comparison_table, differences_table, implied_stage_settings,
                                                         implied_table, plot_best_scales, plot_examples, plot_metric,
                                                         plot_reliability, plot_scale_vs_injected,
                                                         plot_uncertainty_study)
from labkit.experiments.uncertaintystudy.fitting import ScaleHeadsFit, fit_scale_heads
from labkit.experiments.uncertaintystudy.study import run_uncertainty_study

__all__ = ["ARMS", "FIXED", "UNCERTAINTY_SCALES", "Arm", "NoiseCondition", "UncertaintyScale", "ScaleHeadsFit",
           "fit_scale_heads", "run_uncertainty_study", "plot_reliability", "plot_scale_vs_injected", "plot_metric",
           "plot_examples", "plot_best_scales", "comparison_table", "differences_table", "implied_table",
           "implied_stage_settings", "plot_uncertainty_study"]
