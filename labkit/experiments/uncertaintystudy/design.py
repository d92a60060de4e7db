"""The uncertainty study as data: its arms, its noise conditions and its scales.

An *arm* is one way of training the box regressor: a fixed scale (the paper's reading of a stage's (λ, α, σ):
prediction scale 1/(λ·α^m) in σ-scaled target units, Section 5) or a learned per-box scale under one of the losses of
:mod:`labkit.detection.uncertainty`. Every arm is evaluated with and without variance voting. A
:class:`NoiseCondition` says how the training labels are perturbed: Laplace noise (eq. 16) of one scale for every
box (homoscedastic) or a scale that grows as the object fades (heteroscedastic,
:func:`labkit.detection.synthetic.noise_scales` of the object's recorded contrast), drawn afresh per seed.
Nothing here trains or writes files.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from labkit.detection.losses import LINEAR, BoxLossConfig
from labkit.detection.synthetic import HETEROSCEDASTIC, HOMOSCEDASTIC, LABEL_NOISE_MODELS
from labkit.detection.uncertainty import (DISTRIBUTIONS, GAUSSIAN_KL_LOSS, LAPLACE, LAPLACE_KL, LAPLACE_NLL,
                                          UNCERTAINTY_LOSSES, initial_log_scale)
from labkit.interpret import PRESETS

__all__ = ["FIXED", "Arm", "ARMS", "NoiseCondition", "UncertaintyScale", "UNCERTAINTY_SCALES",
           "resolve_uncertainty_scale"]

#: the loss name of an arm whose scale is not learned (the stage's fixed loss, read as a fixed scale)
FIXED = "fixed"


@dataclass(frozen=True)
class Arm:
    """One arm: ``loss`` :data:`FIXED` or one of ``labkit.detection.uncertainty.UNCERTAINTY_LOSSES``, on the
    detection stage of Table 1's ``preset`` (its σ scale the targets; its λ, α set the fixed loss, or the label scale
    and the starting scale of a learned one), with the linear size target (eqs. 93–94)."""

    name: str
    label: str
    preset: str
    loss: str

    def __post_init__(self) -> None:
        if self.loss not in (FIXED, *UNCERTAINTY_LOSSES):
            raise ValueError(f"loss must be {FIXED!r} or one of {UNCERTAINTY_LOSSES}, got loss={self.loss!r}")
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {tuple(PRESETS)}, got preset={self.preset!r}")

    @property
    def learned(self) -> bool:
        return self.loss != FIXED

    @property
    def box_loss(self) -> BoxLossConfig:
        """The preset's detection-stage box loss with the linear size target."""
        preset = PRESETS[self.preset]
        return BoxLossConfig(preset.detection, form=preset.form, size_target=LINEAR)

    @property
    def distribution(self) -> str:
        """``"laplace"`` or ``"gaussian"``: the family the arm's scale describes (a fixed scale: Laplace, eq. 42)."""
        return LAPLACE if self.loss == FIXED else DISTRIBUTIONS[self.loss]

    @property
    def start_log_scale(self) -> float:
        """The log-scale the arm starts from (σ-scaled target units); a fixed arm keeps it: the log of the stage's
        prediction scale 1/(λ·α^m) (``labkit.detection.uncertainty.initial_log_scale``)."""
        return initial_log_scale(self.box_loss, LAPLACE_KL if self.loss == FIXED else self.loss)


#: fixed α (the two Table 1 columns), then the three learned losses on the Implemented stage (torchvision's σ)
ARMS: tuple[Arm, ...] = (
    Arm("fixed-implemented", "fixed, Implemented", "implemented", FIXED),
    Arm("fixed-proposed", "fixed, Proposed", "proposed", FIXED),
    Arm("learned-kl", "learned, Laplace KL (eq. 18)", "implemented", LAPLACE_KL),
    Arm("laplace-nll", "learned, Laplace NLL", "implemented", LAPLACE_NLL),
    Arm("gaussian-kl-loss", "learned, Gaussian KL-Loss (He et al.)", "implemented", GAUSSIAN_KL_LOSS),
)


@dataclass(frozen=True)
class NoiseCondition:
    """Laplace label noise of mean scale ``b1`` (box sizes) under ``model`` (homoscedastic or heteroscedastic)."""

    model: str
    b1: float

    def __post_init__(self) -> None:
        if self.model not in LABEL_NOISE_MODELS:
            raise ValueError(f"model must be one of {LABEL_NOISE_MODELS}, got model={self.model!r}")
        if isinstance(self.b1, bool) or not isinstance(self.b1, (int, float)) or not (
                math.isfinite(self.b1) and self.b1 > 0):
            raise ValueError(f"b1 must be a finite number > 0, got b1={self.b1!r}")

    @property
    def name(self) -> str:
        return f"{'homo' if self.model == HOMOSCEDASTIC else 'hetero'}-b{self.b1:g}"

    @property
    def label(self) -> str:
        return f"{self.model}, b₁ = {self.b1:g}"


@dataclass(frozen=True)
class UncertaintyScale:
    """How big one uncertainty study is: the contrast-varying synthetic data (``synthetic``), the clean reference
    detector's schedule (``reference``: :class:`~labkit.detection.config.TrainConfig` fields), the noise
    ``conditions``, RoIs per ground-truth box, the minibatch Adam fit of fc7 + predictor (``epochs``, ``batch``,
    ``lr``), ``ap_seeds`` seeds whose heads are put back into the detector for COCO AP75, and ``bootstrap``
    resamples for every paired interval."""

    name: str
    description: str
    synthetic: Mapping[str, Any]
    reference: Mapping[str, Any]
    seeds: int
    conditions: tuple[NoiseCondition, ...] = (NoiseCondition(HOMOSCEDASTIC, 0.1), NoiseCondition(HETEROSCEDASTIC, 0.1),
                                              NoiseCondition(HOMOSCEDASTIC, 0.2), NoiseCondition(HETEROSCEDASTIC, 0.2))
    train_rois_per_box: int = 2
    val_rois_per_box: int = 8
    epochs: int = 12
    batch: int = 256
    lr: float = 2e-3
    ap_seeds: int = 5
    bootstrap: int = 2000
    min_seeds: int = 2
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["conditions"] = [{"name": c.name, **asdict(c)} for c in self.conditions]
        return out


UNCERTAINTY_SCALES: dict[str, UncertaintyScale] = {
    "smoke": UncertaintyScale(
        name="smoke",
        description="seconds, for CI: 8 training images of 64 px, a reference detector of 6 iterations; its "
                    "numbers are noise",
        synthetic={"n_train": 8, "n_val": 4, "image_size": 64, "seed": 0, "label_noise_model": HETEROSCEDASTIC},
        reference={"iters": 6, "batch_size": 2, "lr": 0.01, "warmup_iters": 1, "image_size": 64,
                   "checkpoint_every": 6},
        seeds=3, conditions=(NoiseCondition(HOMOSCEDASTIC, 0.1), NoiseCondition(HETEROSCEDASTIC, 0.1)),
        val_rois_per_box=4, epochs=2, batch=32, ap_seeds=1, bootstrap=200),
    "lab": UncertaintyScale(
        name="lab",
        description="synthetic shapes whose contrast varies (2000 training, 200 validation images of 160 px); the "
                    "`lab` detector trained once on clean labels for 3000 iterations and frozen; the box head's "
                    "fc7 and predictor (with its scale output) refitted per arm and seed on noisy labels",
        synthetic={"n_train": 2000, "n_val": 200, "image_size": 160, "seed": 0, "label_noise_model": HETEROSCEDASTIC},
        reference={"iters": 3000, "batch_size": 8, "lr": 0.02, "warmup_iters": 100, "image_size": 160,
                   "checkpoint_every": 500},
        seeds=20, min_seeds=10),
}


def resolve_uncertainty_scale(scale: str | UncertaintyScale) -> UncertaintyScale:
    """``scale`` itself, or the :data:`UNCERTAINTY_SCALES` entry it names."""
    if isinstance(scale, UncertaintyScale):
        return scale
    if scale not in UNCERTAINTY_SCALES:
        raise ValueError(f"scale must be one of {tuple(UNCERTAINTY_SCALES)}, got scale={scale!r}")
    return UNCERTAINTY_SCALES[scale]
