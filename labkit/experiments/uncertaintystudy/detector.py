"""A refitted head put back into the frozen reference detector, for COCO AP and the detector's own calibration.

:func:`scale_detector` rebuilds the reference with ``labkit.detection.uncertainty.LearnedScaleRoIHeads`` (its
weights loaded; only the new scale layer and the annealing step count are not in the checkpoint) and gives the box
head a second branch: ``fc7`` becomes [reference fc7 ; refitted fc7] (2h outputs, each half followed by the box
head's ReLU), the classifier reads the first half only (its reference weights, zeros on the second half) and the
box regressor and scale layer the second half only. The detector's classification, proposals and scores therefore
stay the reference's exactly, and only its boxes and scales come from the refitted head, as in the study.

:func:`install_head` writes one arm's fc7, box regressor and scale layer into the second branch. The arm's outputs
are in its own σ-scaled target units (1/σ_arm = its box coder weights w_arm) and the detector decodes with the
reference's w_ref, so the box outputs are multiplied by w_ref/w_arm per coordinate and the log-scales shifted by
log(w_ref/w_arm): the detector then predicts exactly the arm's boxes and pixel scales. A fixed arm's scale layer is
constant (weights 0), its start.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labkit.detection.backbones import read_state_dict
from labkit.detection.config import read_config
from labkit.detection.evaluate import evaluate
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
    _add_branch(model.roi_heads)
    return model.eval().requires_grad_(False)


def _widened(layer: nn.Linear, d_in: int, d_out: int) -> nn.Linear:
    out = nn.Linear(d_in, d_out, device=layer.weight.device, dtype=layer.weight.dtype)
    with torch.no_grad():
        out.weight.zero_()
        out.bias.zero_()
    return out


@torch.no_grad()
def _add_branch(heads: nn.Module) -> None:
    """fc7 → [reference fc7 ; a second branch]; the classifier on the first half, box and scale on the second."""
    fc7, predictor = heads.box_head.fc7, heads.box_predictor
    hidden = fc7.out_features
    wide = _widened(fc7, fc7.in_features, 2 * hidden)
    wide.weight[:hidden], wide.bias[:hidden] = fc7.weight, fc7.bias
    classifier = _widened(predictor.cls_score, 2 * hidden, predictor.cls_score.out_features)
    classifier.weight[:, :hidden], classifier.bias[:] = predictor.cls_score.weight, predictor.cls_score.bias
    heads.box_head.fc7, predictor.cls_score = wide, classifier
    predictor.bbox_pred = _widened(predictor.bbox_pred, 2 * hidden, predictor.bbox_pred.out_features)
    predictor.log_scale = _widened(predictor.log_scale, 2 * hidden, predictor.log_scale.out_features)


@torch.no_grad()
def install_head(model: nn.Module, fit: ScaleHeadsFit, m: int, voting: bool) -> None:
    """Write arm ``m`` of ``fit`` into the second branch of ``model`` (from :func:`scale_detector`) and set
    variance voting."""
    arm = fit.arms[m % len(fit.arms)]
    heads = model.roi_heads
    heads.uncertainty = UncertaintyConfig(loss=arm.loss if arm.learned else LAPLACE_KL, var_voting=bool(voting))
    factor = torch.as_tensor(heads.box_coder.weights, dtype=fit.w2.dtype) / torch.as_tensor(
        arm.box_loss.box_coder_weights, dtype=fit.w2.dtype)
    width = fit.w2.shape[-1] // 2
    column = factor.repeat(width // 4)
    fc7, predictor = heads.box_head.fc7, heads.box_predictor
    hidden = fc7.out_features // 2
    if fit.w1.shape[-1] != hidden:
        raise ValueError(f"fit: its fc7 has {fit.w1.shape[-1]} units, the detector's branch {hidden}")
    fc7.weight[hidden:] = fit.w1[m].T
    fc7.bias[hidden:] = fit.b1[m]
    predictor.bbox_pred.weight[:, hidden:] = (fit.w2[m][:, :width] * column).T
    predictor.bbox_pred.bias[:] = fit.b2[m][:width] * column
    predictor.log_scale.weight[:, hidden:] = fit.w2[m][:, width:].T
    predictor.log_scale.bias[:] = fit.b2[m][width:] + torch.log(column)


def detector_metrics(model: nn.Module, fit: ScaleHeadsFit, m: int, voting: bool, dataset: Any,
                     device: torch.device) -> dict[str, Any]:
    """COCO evaluation of the reference with arm ``m``'s head: :data:`DETECTOR_METRICS` prefixed ``det_``."""
    install_head(model, fit, m, voting)
    metrics = evaluate(model, dataset, device=device, oracle=False)  # the study scores every box itself
    return {f"det_{k}": (None if isinstance(metrics.get(k), float) and math.isnan(metrics[k]) else metrics.get(k))
            for k in DETECTOR_METRICS}
