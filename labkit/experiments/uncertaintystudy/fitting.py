"""Refitting the box head with a scale output on cached features, every (seed, arm) at once.

Each arm gets the box head's fc7 and a class-specific predictor with (K + 1)·4 box outputs and (K + 1)·4 log-scale
outputs, the head study's setting (b) with ``labkit.detection.uncertainty.ScalePredictor``'s scale layer
(:func:`labkit.experiments.headstudy.fitting.train_mlp_arms`: the same initialisation and minibatch order for every
arm of a seed; arms are independent blocks of parameters, so the batch equals separate fits). The loss of an arm on
the residual r = t̂ − t̃* of the RoI's class, in its own σ-scaled target units (t̃* = t*/σ, eqs. 38, 44):

- fixed: the stage's box loss (``labkit.detection.losses.box_regression_loss``, eq. 37 for the Implemented form);
  its scale outputs get no gradient and keep their start, the stage's prediction scale 1/(λ·α^m);
- learned: ``labkit.detection.uncertainty.uncertainty_loss`` with the log-scale clamped to ``LOG_SCALE_RANGE``
  (Laplace KL of eq. 18 with the stage's label scale, Laplace NLL, or KL-Loss's Gaussian form),

summed over the four coordinates and averaged over the RoIs of the batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from labkit.detection.losses import box_regression_loss
from labkit.detection.uncertainty import LOG_SCALE_RANGE, label_scale, uncertainty_loss
from labkit.experiments.headstudy.fitting import class_rows, mlp_outputs, train_mlp_arms
from labkit.experiments.uncertaintystudy.design import Arm

__all__ = ["ScaleHeadsFit", "arm_loss", "fit_scale_heads"]


def arm_loss(arm: Arm, residual: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Element-wise loss of ``arm`` for σ-scaled ``residual`` and (clamped) ``log_scale`` of the same shape."""
    box_loss = arm.box_loss
    if not arm.learned:
        return box_regression_loss(residual, box_loss)
    return uncertainty_loss(residual, log_scale, arm.loss, label_scale(box_loss), float(box_loss.settings.alpha))


@dataclass(frozen=True)
class ScaleHeadsFit:
    """Per arm m (seed-major, ``arms[m % A]``): fc7 (``w1``, ``b1``) and the predictor (``w2``, ``b2``: box outputs,
    then log-scales). ``loss``: each arm's mean training loss over its last epoch [M]."""

    arms: tuple[Arm, ...]
    w1: torch.Tensor
    b1: torch.Tensor
    w2: torch.Tensor
    b2: torch.Tensor
    loss: torch.Tensor

    def coder_weights(self) -> torch.Tensor:
        """1/σ per arm and coordinate [A, 4] (the box coder weights of eq. 44)."""
        return torch.tensor([a.box_loss.box_coder_weights for a in self.arms], dtype=self.w1.dtype)

    def predict(self, features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(targets, scales) predicted by every arm, each [M, R, 4] in σ = 1 target units (a Laplace b, or the
        Gaussian standard deviation for KL-Loss): the σ-scaled outputs times σ."""
        out = mlp_outputs(features, self.w1, self.b1, self.w2, self.b2)
        width = out.shape[-1] // 2
        sigma = (1 / self.coder_weights()).repeat(len(out) // len(self.arms), 1)[:, None]  # [M, 1, 4]
        mu = class_rows(out, labels) * sigma
        scale = class_rows(out, labels, offset=width).clamp(*LOG_SCALE_RANGE).exp() * sigma
        return mu, scale


def fit_scale_heads(features: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor, arms: Sequence[Arm],
                    seeds: Sequence[int], epochs: int, batch: int, lr: float, num_classes: int, hidden: int = 256
                    ) -> ScaleHeadsFit:
    """Fit every arm for every seed (module docstring). ``features`` [N, d]: the frozen box head's fc6 output;
    ``labels`` [N] in 1..``num_classes``; ``targets`` [S, N, 4]: each seed's noisy targets with σ = 1."""
    arms = tuple(arms)
    if features.ndim != 2 or labels.shape != features.shape[:1]:
        raise ValueError(f"features must be [N, d] and labels [N], got {tuple(features.shape)} and "
                         f"{tuple(labels.shape)}")
    if targets.ndim != 3 or targets.shape[1:] != (len(features), 4) or len(targets) != len(seeds):
        raise ValueError(f"targets must be [seeds={len(seeds)}, N={len(features)}, 4], got {tuple(targets.shape)}")
    if not arms or not all(isinstance(a, Arm) for a in arms):
        raise ValueError("arms must be a non-empty sequence of Arm")
    n_seeds = len(seeds)
    weights = torch.tensor([a.box_loss.box_coder_weights for a in arms], dtype=features.dtype)  # [A, 4]
    scaled = targets[:, None] * weights[None, :, None]  # [S, A, N, 4]: each arm's σ-scaled targets
    start = torch.tensor([a.start_log_scale for a in arms], dtype=features.dtype)
    width = (num_classes + 1) * 4

    def loss(out: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        rows = [labels[idx[s]] for s in range(n_seeds)]
        mu = torch.stack([class_rows(out[s], rows[s]) for s in range(n_seeds)])  # [S, A, B, 4]
        u = torch.stack([class_rows(out[s], rows[s], offset=width) for s in range(n_seeds)]).clamp(*LOG_SCALE_RANGE)
        truth = torch.stack([scaled[s][:, idx[s]] for s in range(n_seeds)])  # [S, A, B, 4]
        residual = mu - truth
        return torch.stack([arm_loss(arm, residual[:, a], u[:, a]).sum(-1).mean(-1) for a, arm in enumerate(arms)],
                           dim=-1)

    (w1, b1, w2, b2), last = train_mlp_arms(features, labels, seeds, len(arms), loss, epochs, batch, lr,
                                            num_classes, hidden, log_scale_start=start)
    return ScaleHeadsFit(arms, w1, b1, w2, b2, last.reshape(-1))
