"""A controlled box-regression study: does the best Huber transition α·σ track the label noise b₁ (eq. 42)?

One clean ``lab`` detector is trained once and frozen; training RoIs are ground-truth boxes jittered to IoU ≥ 0.5
whose box-head features are computed once and cached; only the box regressor is refitted — (a) the final linear
layer (convex), (b) the box head's last layer and the regressor (an MLP) — on labels with known injected noise
(Laplace of scale b₁ × box size, eq. 16, drawn afresh per seed; controls: Gaussian noise of the same variance, and
10 % of boxes moved by half a box), with the loss (λ/α)·H_α of eq. 37 at each label scale α·σ on a log grid, and
evaluated on clean validation RoIs. The analysis asks where the error is least and how that point moves with b₁,
against the paper's rule (α·σ = b₁ within the bounds of eq. 27) and the asymptotic theory of M-estimates
(:mod:`labkit.theory`).

Modules: :mod:`.design` (scales, conditions, the loss of a label scale), :mod:`.reference` (the reference
detector, :func:`pool_features`), :mod:`.rois` (jittered RoIs, noisy labels, errors), :mod:`.fitting` (batched
Adam fits; the learning-rate rule), :mod:`.analysis` (argmin, paired bootstrap, slope, theory), :mod:`.report`
(files, verdict), :mod:`.display` (plots and tables), :mod:`.study` (:func:`run_head_study`, the command's engine).
Command: ``python -m labkit experiment head-study --scale smoke|lab --seeds N --out DIR``.
"""
from labkit.experiments.headstudy.analysis import (argmin_scale, bootstrap_argmin, bootstrap_slope,
                                                   fit_gaussian_laplace, paper_band, theory_optimum)
from labkit.experiments.headstudy.design import (HEAD_SCALES, SETTINGS, Condition, HeadScale, head_loss,
                                                 label_scale_grid)
from labkit.experiments.headstudy.display import (argmin_table, corners_table, finite_p_table, plot_error_curves,
                                                  plot_head_study, slope_table, theory_optimum_table)
from labkit.experiments.headstudy.fitting import fit_linear, fit_mlp
from labkit.experiments.headstudy.reference import pool_features
from labkit.experiments.headstudy.rois import jitter_boxes
from labkit.experiments.headstudy.study import run_head_study

__all__ = ["HEAD_SCALES", "SETTINGS", "HeadScale", "Condition", "head_loss", "label_scale_grid", "run_head_study",
           "pool_features", "jitter_boxes", "fit_linear", "fit_mlp", "argmin_scale", "bootstrap_argmin",
           "bootstrap_slope", "paper_band", "fit_gaussian_laplace", "theory_optimum", "plot_head_study",
           "plot_error_curves", "slope_table", "argmin_table", "corners_table", "theory_optimum_table",
           "finite_p_table"]
