"""The head study as data: its scales, its noise conditions and the loss of each label scale α·σ.

One *cell* of the study is (setting, condition, label scale α·σ); every cell is fitted once per seed. A
:class:`Condition` says what is done to the training labels (eq. 16's Laplace noise of scale b₁ × box size, or one of
the two controls); a :class:`HeadScale` says how big everything is. Nothing here trains or writes files.

The loss of label scale α·σ is the released code's (λ/α)·H_α on σ-scaled targets (eq. 37) with σ and the prediction
scale σ/λ of the ``proposed`` detection stage held fixed, as the noise study does (``labkit.experiments.designs``):
eq. 42 reads it as D_{ασ·w_a, σ·w_a/λ}, so α·σ is the label noise it assumes, in units of the RoI size w_a.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, Mapping

from labkit.detection.losses import IMPLEMENTATION, LINEAR, BoxLossConfig
from labkit.interpret import PRESETS, exact, suggest_stage, uncertainty_scales

__all__ = ["LAPLACE", "GAUSSIAN", "OUTLIERS", "NOISE_KINDS", "SETTINGS", "LINEAR_SETTING", "MLP_SETTING",
           "BASE_PRESET", "Condition", "conditions", "label_scale_grid", "head_loss", "HeadScale", "HEAD_SCALES",
           "resolve_head_scale"]

LAPLACE, GAUSSIAN, OUTLIERS = "laplace", "gaussian", "outliers"
NOISE_KINDS = (LAPLACE, GAUSSIAN, OUTLIERS)
#: (a) the final linear layer alone (convex), (b) the box head's last layer + the regressor (an MLP)
LINEAR_SETTING, MLP_SETTING = "a_linear", "b_mlp"
SETTINGS = (LINEAR_SETTING, MLP_SETTING)
#: the preset whose detection stage fixes σ and the prediction scale σ/λ while α·σ is swept
BASE_PRESET = "proposed"


@dataclass(frozen=True)
class Condition:
    """What is done to the training labels, per ground-truth box (all RoIs of a box share its one noisy label).

    ``laplace``: centre and size get Laplace(0, b₁·w) noise (eq. 16; ``scale`` = b₁, 0 = clean labels);
    ``gaussian``: N(0, 2b₁²·w²) — the same variance as Laplace(b₁) (``scale`` = b₁);
    ``outliers``: a ``fraction`` of the boxes moved by ``scale`` box sizes in a random direction, the rest clean.
    """

    kind: str
    scale: float
    fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in NOISE_KINDS:
            raise ValueError(f"kind must be one of {NOISE_KINDS}, got kind={self.kind!r}")
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and self.scale >= 0):
            raise ValueError(f"scale must be a finite number >= 0, got scale={self.scale!r}")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got fraction={self.fraction!r}")

    @property
    def name(self) -> str:
        if self.kind == OUTLIERS:
            return f"outliers{self.fraction:g}x{self.scale:g}"
        return f"b{self.scale:g}" if self.kind == LAPLACE else f"gauss{self.scale:g}"

    @property
    def label(self) -> str:
        if self.kind == OUTLIERS:
            return f"{self.fraction:.0%} of boxes moved {self.scale:g} box"
        return f"b₁ = {self.scale:g}" if self.kind == LAPLACE else f"Gaussian, same variance as b₁ = {self.scale:g}"


def conditions(label_noises: tuple[float, ...], control_noise: float, outlier_fraction: float,
               outlier_shift: float) -> tuple[Condition, ...]:
    """The Laplace conditions (one per b₁) and the two controls."""
    out = [Condition(LAPLACE, float(b)) for b in label_noises]
    return (*out, Condition(GAUSSIAN, float(control_noise)), Condition(OUTLIERS, outlier_shift, outlier_fraction))


def label_scale_grid(smallest: Fraction, largest: Fraction, count: int) -> tuple[Fraction, ...]:
    """``count`` label scales α·σ log-spaced from ``smallest`` to ``largest``, each an exact decimal of 4
    significant digits (the ends exact): 1/160 … 2/5 in 10 steps of 4^{1/3} hits 1/40, 1/10 and 2/5 exactly."""
    lo, hi = exact("smallest", smallest), exact("largest", largest)
    if not (isinstance(count, int) and count >= 2 and lo < hi):
        raise ValueError(f"need count >= 2 and smallest < largest, got count={count!r}, {lo} .. {hi}")
    ratio = math.log(hi / lo) / (count - 1)
    inner = [exact("label_scale", float(f"{float(lo) * math.exp(k * ratio):.4g}")) for k in range(1, count - 1)]
    return (lo, *inner, hi)


def head_loss(label_scale: Fraction) -> BoxLossConfig:
    """The detection stage's box loss of label scale α·σ (eq. 42): σ (σ_x of :data:`BASE_PRESET` for all four
    coordinates) and the prediction scale σ/λ held, α = α·σ/σ, via ``labkit.interpret.suggest_stage``; linear size
    targets (eqs. 93–94) so that symmetric label noise stays symmetric in target space."""
    base = PRESETS[BASE_PRESET].detection
    _, prediction_scale = uncertainty_scales(base.lam, base.alpha, base.sigma_x, form=PRESETS[BASE_PRESET].form)
    stage = suggest_stage(exact("label_scale", label_scale), prediction_scale, sigma=base.sigma_x)
    return BoxLossConfig(stage, form=IMPLEMENTATION, size_target=LINEAR)


@dataclass(frozen=True)
class HeadScale:
    """How big one head study is.

    ``synthetic``: :func:`labkit.detection.synthetic.generate_synthetic` settings; ``reference``: the
    :class:`~labkit.detection.config.TrainConfig` fields of the clean reference detector; ``train_rois_per_box`` /
    ``val_rois_per_box``: jittered RoIs drawn per ground-truth box; ``linear_steps``/``linear_lr``: full-batch Adam
    steps and learning rate of setting (a); ``mlp_epochs``/``mlp_batch``/``mlp_lr``: minibatch Adam of setting (b);
    ``bootstrap``: resamples for every interval; ``theory``: compute the M-estimation theory's optima (a few
    seconds of quadrature each; the smoke scale's residuals are too degenerate to be worth it); ``ap75_cells``:
    (condition name, label scale) pairs whose retrained last layer is put back into the detector for a full COCO
    evaluation, for the first ``ap75_seeds`` seeds.
    """

    name: str
    description: str
    synthetic: Mapping[str, Any]
    reference: Mapping[str, Any]
    seeds: int
    label_noises: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.4)
    label_scales: tuple[Fraction, ...] = label_scale_grid(Fraction(1, 160), Fraction(2, 5), 10)
    control_noise: float = 0.1
    outlier_fraction: float = 0.1
    outlier_shift: float = 0.5
    train_rois_per_box: int = 2
    val_rois_per_box: int = 4
    linear_steps: int = 400
    linear_lr: float = 0.05
    mlp_epochs: int = 8
    mlp_batch: int = 256
    mlp_lr: float = 2e-3
    bootstrap: int = 2000
    theory: bool = True
    ap75_cells: tuple[tuple[str, Fraction], ...] = ()
    ap75_seeds: int = 0
    min_seeds: int = 2
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return conditions(self.label_noises, self.control_noise, self.outlier_fraction, self.outlier_shift)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["label_scales"] = [str(s) for s in self.label_scales]
        out["ap75_cells"] = [[c, str(s)] for c, s in self.ap75_cells]
        out["conditions"] = [{"name": c.name, **asdict(c)} for c in self.conditions]
        return out


HEAD_SCALES: dict[str, HeadScale] = {
    "smoke": HeadScale(
        name="smoke",
        description="seconds, for CI: 8 training images of 64 px, a reference detector of 6 iterations; its "
                    "numbers are noise",
        synthetic={"n_train": 8, "n_val": 4, "image_size": 64, "seed": 0},
        reference={"iters": 6, "batch_size": 2, "lr": 0.01, "warmup_iters": 1, "image_size": 64,
                   "checkpoint_every": 6},
        seeds=3, label_noises=(0.0, 0.1, 0.4), label_scales=label_scale_grid(Fraction(1, 160), Fraction(2, 5), 4),
        linear_steps=60, mlp_epochs=2, mlp_batch=32, bootstrap=200, theory=False,
        ap75_cells=(("b0.1", Fraction(1, 40)),), ap75_seeds=1,
    ),
    "lab": HeadScale(
        name="lab",
        description="the bundled synthetic shapes (2000 training, 200 validation images of 160 px); the `lab` "
                    "detector trained once on clean labels for 3000 iterations (Implemented preset, linear size "
                    "target), frozen; only the box regressor refitted, 20 seeds per cell",
        synthetic={"n_train": 2000, "n_val": 200, "image_size": 160, "seed": 0},
        reference={"iters": 3000, "batch_size": 8, "lr": 0.02, "warmup_iters": 100, "image_size": 160,
                   "checkpoint_every": 500},
        seeds=20, min_seeds=20,
        ap75_cells=tuple((c, Fraction(s)) for c in ("b0", "b0.2") for s in ("1/160", "1/40", "2/5")),
        ap75_seeds=3,
    ),
}


def resolve_head_scale(scale: str | HeadScale) -> HeadScale:
    """``scale`` itself, or the :data:`HEAD_SCALES` entry it names."""
    if isinstance(scale, HeadScale):
        return scale
    if scale not in HEAD_SCALES:
        raise ValueError(f"scale must be one of {tuple(HEAD_SCALES)}, got scale={scale!r}")
    return HEAD_SCALES[scale]
