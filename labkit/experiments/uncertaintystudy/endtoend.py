"""Learned per-box uncertainty end to end (``python -m labkit experiment uncertainty-e2e``): the head study's clean
reference detector fine-tuned on noisy labels with its fixed scales or with learned ones.

The frozen-feature study (:mod:`.study`) refits only the box head's last two layers; here every layer learns from
the noisy labels, and the RPN can learn its scales too (``--uncertainty-rpn``, which the frozen harness cannot
test). Each run starts from the reference's last checkpoint — a learned model takes a fixed model's weights, its
scale layers starting at the stage's prediction scale (:func:`labkit.detection.model.load_weights`) — and follows
the head study's fine-tuning schedule (:data:`labkit.experiments.headstudy.endtoend.FINETUNE`) on the synthetic
data with Laplace label noise b₁ = :data:`E2E_NOISE` (eq. 16) drawn afresh per seed (the same scenes). The arms
(:data:`E2E_ARMS`) keep the reference's box losses and differ only in the scales: fixed, the Laplace KL of eq. 18
(detection head; detection head and RPN), the Laplace NLL, KL-Loss's Gaussian form — plus one fixed arm whose
detection stage has α ÷ 4 (:data:`SHAPE_CONTROL`: label scale ÷ 4, σ and the prediction scale held, a loss nearer
L1), the control that tells a learned scale from a loss shape nearer the NLL's. The runs go through
:func:`labkit.experiments.run_experiment` (provenance, reuse, result files); read them paired by seed against the
fixed arm with :func:`labkit.experiments.difference_table` (``reference=``:data:`E2E_REFERENCE`).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from labkit.detection.losses import BoxLosses
from labkit.detection.uncertainty import GAUSSIAN_KL_LOSS, LAPLACE_KL, LAPLACE_NLL, LEARNED
from labkit.experiments.designs import Arm, Experiment
from labkit.experiments.headstudy.design import HeadScale
from labkit.experiments.headstudy.endtoend import run_finetuned
from labkit.experiments.results import Results

__all__ = ["E2E", "E2E_NOISE", "E2E_REFERENCE", "E2E_ARMS", "SHAPE_CONTROL", "e2e_experiment",
           "run_uncertainty_e2e"]

E2E = "uncertainty-e2e"
#: the injected label noise b₁ (box sizes): the level where the frozen-feature study's arms differed most
E2E_NOISE = 0.2
#: the arm every other is read against
E2E_REFERENCE = "fixed"
#: (name, label, TrainConfig uncertainty fields) per arm
E2E_ARMS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (E2E_REFERENCE, "fixed scales (the reference's loss)", {}),
    ("learned-kl", "learned, Laplace KL (eq. 18)", {"uncertainty": LEARNED, "uncertainty_loss": LAPLACE_KL}),
    ("learned-kl-rpn", "learned, Laplace KL (eq. 18), RPN too",
     {"uncertainty": LEARNED, "uncertainty_loss": LAPLACE_KL, "uncertainty_rpn": True}),
    ("laplace-nll", "learned, Laplace NLL", {"uncertainty": LEARNED, "uncertainty_loss": LAPLACE_NLL}),
    ("gaussian-kl-loss", "learned, Gaussian KL-Loss (He et al.)",
     {"uncertainty": LEARNED, "uncertainty_loss": GAUSSIAN_KL_LOSS}),
)


#: the fixed arm with the detection stage's α divided by 4 (label scale α·σ ÷ 4; σ and, in the implementation
#: form, the prediction scale σ/λ held): (λ/α)·H_α then has the same slope λ for large residuals, nearer L1
SHAPE_CONTROL = ("fixed-alpha-quarter", "fixed scales, α ÷ 4 (nearer L1)")


def e2e_experiment(losses: BoxLosses) -> Experiment:
    """The arms of :data:`E2E_ARMS`, each with the reference's box ``losses`` and label noise :data:`E2E_NOISE`,
    and :data:`SHAPE_CONTROL` second."""
    detection = losses.detection
    quarter = BoxLosses(rpn=losses.rpn, detection=replace(
        detection, settings=replace(detection.settings, alpha=detection.settings.alpha / 4)))
    arms = [Arm(name, label, losses, label_noise=E2E_NOISE, uncertainty=fields or None)
            for name, label, fields in E2E_ARMS]
    arms.insert(1, Arm(*SHAPE_CONTROL, quarter, label_noise=E2E_NOISE))
    arms = tuple(arms)
    return Experiment(E2E, f"Learned uncertainty, end to end: the clean reference fine-tuned on b₁ = {E2E_NOISE:g} "
                           "label noise", arms)


def run_uncertainty_e2e(scale: str | HeadScale = "smoke", seeds: int | Sequence[int] | None = None,
                        out: str | Path | None = None, device: str = "cpu", reuse: str = "same-commit",
                        progress: bool = True) -> Results:
    """The arms of :func:`e2e_experiment` fine-tuned from the head study's reference
    (:func:`~labkit.experiments.headstudy.endtoend.run_finetuned`)."""
    return run_finetuned(e2e_experiment, E2E, scale, seeds, out, device, reuse, progress, label_noises=(E2E_NOISE,))
