"""A refitted head put back into the frozen reference detector, for COCO AP and the detector's own calibration.

:func:`scale_detector` rebuilds the reference with ``labkit.detection.uncertainty.LearnedScaleRoIHeads`` (its
weights loaded; only the new scale layer and the annealing step count are not in the checkpoint). :func:`install_head` writes one arm's fc7,
box regressor and scale layer into it. The arm's outputs are in its own σ-scaled target units (1/σ_arm = its box
coder weights w_arm) and the detector decodes with the reference's w_ref, so the box outputs are multiplied by
w_ref/w_arm per coordinate and the log-scales shifted by log(w_ref/w_arm): the detector then predicts exactly the
arm's boxes and pixel scales. A fixed arm's scale layer is constant (weights 0), its start.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labkit.detection.config import read_config
from labkit.detection.evaluate import evaluate
from labkit.detection.backbones import read_state_dict
from labkit.detection.model import build_model
from labkit.detection.runs import latest_checkpoint
from labkit.detection.uncertainty import LAPLACE_KL, UncertaintyConfig
from labkit.experiments.uncertaintystudy.fitting import ScaleHeadsFit

__all__ = ["DETECTOR_METRICS", "scale_detector", "install_head", "detector_metrics"]

#: what each evaluation of a refitted detector keeps (``det_`` prefixed in the study's rows)
DETECTOR_METRICS = ("AP", "AP50", "AP75", "loc_err", "unc_nll", "unc_calibration_error", "unc_sharpness",
                    "unc_rank_correlation")


def scale_detector(run_dir: str | Path, num_classes: int) -> nn.Module:
    """The reference detector of ``run_dir`` (its last checkpoint) with learned-scale RoI heads, eval mode,
    frozen. ``num_classes`` counts the background."""
    config = read_config(run_dir)
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"run_dir: no checkpoint in {run_dir} (has the reference trained?)")
    state = read_state_dict(checkpoint)
    state = state.get("model", state)
    model = build_model(config.model, num_classes, config.losses, image_size=config.image_size,
                        backbone_weights=config.backbone_weights, uncertainty=UncertaintyConfig())
    missing, unexpected = model.load_state_dict(state, strict=False)
    extra = [k for k in missing if ".log_scale." not in k and k != "roi_heads.anneal_step"]
    if extra or unexpected:
        raise ValueError(f"run_dir: the checkpoint of {run_dir} does not fit the reference model: missing "
                         f"{extra}, unexpected {list(unexpected)}")
    return model.eval().requires_grad_(False)


@torch.no_grad()
def install_head(model: nn.Module, fit: ScaleHeadsFit, m: int, voting: bool) -> None:
    """Write arm ``m`` of ``fit`` into ``model`` (from :func:`scale_detector`) and set variance voting."""
    arm = fit.arms[m % len(fit.arms)]
    heads = model.roi_heads
    heads.uncertainty = UncertaintyConfig(loss=arm.loss if arm.learned else LAPLACE_KL, var_voting=bool(voting))
    factor = torch.as_tensor(heads.box_coder.weights, dtype=fit.w2.dtype) / torch.as_tensor(
        arm.box_loss.box_coder_weights, dtype=fit.w2.dtype)
    width = fit.w2.shape[-1] // 2
    column = factor.repeat(width // 4)
    fc7, predictor = heads.box_head.fc7, heads.box_predictor
    fc7.weight.copy_(fit.w1[m].T)
    fc7.bias.copy_(fit.b1[m])
    predictor.bbox_pred.weight.copy_((fit.w2[m][:, :width] * column).T)
    predictor.bbox_pred.bias.copy_(fit.b2[m][:width] * column)
    predictor.log_scale.weight.copy_(fit.w2[m][:, width:].T)
    predictor.log_scale.bias.copy_(fit.b2[m][width:] + torch.log(column))


def detector_metrics(model: nn.Module, fit: ScaleHeadsFit, m: int, voting: bool, dataset: Any,
                     device: torch.device) -> dict[str, Any]:
    """COCO evaluation of the reference with arm ``m``'s head: :data:`DETECTOR_METRICS` prefixed ``det_``."""
    install_head(model, fit, m, voting)
    metrics = evaluate(model, dataset, device=device)
    return {f"det_{k}": (None if isinstance(metrics.get(k), float) and math.isnan(metrics[k]) else metrics.get(k))
            for k in DETECTOR_METRICS}
