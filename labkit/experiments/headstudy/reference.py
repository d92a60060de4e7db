"""The clean reference detector of the head study, and the frozen features of its box head.

:func:`reference_config` / :func:`train_reference` train the ``lab`` detector once on clean labels
(:func:`labkit.detection.engine.train`; the Implemented preset with the linear size target of eqs. 93–94) and reuse
a finished run of the same config made by the checked-out commit. :func:`load_frozen` rebuilds it from its last
checkpoint with every parameter frozen. :func:`pool_features` is the one seam into the detector: images and boxes
in, the box head's activations out, through torchvision's own modules (``transform``, ``backbone``,
``roi_heads.box_roi_pool``, ``roi_heads.box_head.fc6``/``fc7``) exactly as ``RoIHeads`` runs them.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from labkit.detection.config import TrainConfig, read_config
from labkit.detection.engine import train
from labkit.detection.losses import LINEAR
from labkit.detection.model import build_model
from labkit.detection.oracle import pool_rois
from labkit.detection.runs import latest_checkpoint, read_provenance
from labkit.detection.synthetic import ensure_synthetic
from labkit.experiments.headstudy.design import HeadScale
from labkit.provenance import git_state, same_code

__all__ = ["REFERENCE_PRESET", "reference_config", "train_reference", "prepare_reference", "load_frozen",
           "pool_features"]

#: the reference detector's Table 1 column (read with the linear size target)
REFERENCE_PRESET = "implemented"


def reference_config(scale: HeadScale, data: str | Path, out: str | Path, device: str = "cpu",
                     experiment: str = "head-study") -> TrainConfig:
    """The reference detector's training config: the ``lab`` model, the scale's schedule (``scale.reference``),
    clean labels, seed 0. ``scale``: a :class:`HeadScale`, or any scale with ``name`` and ``reference`` (the
    uncertainty study's); ``experiment`` names the study that owns the run."""
    return TrainConfig(data=str(Path(data).resolve()), out=str(Path(out).resolve()), model="lab",
                       preset=REFERENCE_PRESET, size_target=LINEAR, device=device, seed=0, **dict(scale.reference),
                       extra={"experiment": experiment, "role": "reference", "scale": scale.name})


def _finished(config: TrainConfig, any_commit: bool) -> dict[str, Any] | None:
    run_dir = Path(config.out)
    if not any_commit and not same_code((read_provenance(run_dir) or {}).get("created"), git_state()):
        return None
    try:
        saved = read_config(run_dir).to_dict()
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    wanted = config.to_dict()
    if {k: v for k, v in saved.items() if k != "device"} != {k: v for k, v in wanted.items() if k != "device"}:
        return None
    return metrics if latest_checkpoint(run_dir) is not None else None


def train_reference(config: TrainConfig, reuse: str = "same-commit", progress: bool = False) -> dict[str, Any]:
    """Train the reference (or reuse a finished run of ``config``: ``reuse`` "same-commit", "any" or "never").

    Returns ``{"run_dir", "metrics", "train_seconds", "reused", "git_commit", "git_dirty"}``; ``train_seconds`` is
    the run's own training time from its log (evaluation excluded), also for a reused run.
    """
    if reuse not in ("same-commit", "any", "never"):
        raise ValueError(f"reuse must be 'same-commit', 'any' or 'never', got reuse={reuse!r}")
    metrics = None if reuse == "never" else _finished(config, reuse == "any")
    reused = metrics is not None
    if metrics is None:
        resume = reuse != "never" and latest_checkpoint(config.out) is not None
        if reuse == "never" and latest_checkpoint(config.out) is not None:
            raise FileExistsError(f"reuse='never' but {config.out} already holds a run; remove it or choose --out")
        run_dir = Path(train(config, resume=resume, progress=progress))
        metrics = json.loads((run_dir / "metrics.json").read_text())
    run_dir = Path(config.out)
    lines = (run_dir / "log.jsonl").read_text().strip().splitlines()
    created = (read_provenance(run_dir) or {}).get("created", {})
    return {"run_dir": str(run_dir), "metrics": metrics, "train_seconds": float(json.loads(lines[-1])["seconds"]),
            "reused": reused, "git_commit": created.get("git_commit"), "git_dirty": created.get("git_dirty")}


def prepare_reference(scale: Any, out: Path, data: Path, device: torch.device, reuse: str = "same-commit",
                      experiment: str = "head-study", progress: bool = False
                      ) -> tuple[TrainConfig, dict[str, Any], dict[str, float]]:
    """What every study on a frozen reference starts with: the scale's synthetic data at ``data`` (generated unless
    there), then the clean reference under ``out``/runs/reference (:func:`train_reference`). Returns (config, the
    reference's record, seconds spent on ``"data"`` and ``"reference"``)."""
    tic = time.perf_counter()
    ensure_synthetic(data, **dict(scale.synthetic))
    timings = {"data": time.perf_counter() - tic}
    config = reference_config(scale, data, Path(out) / "runs" / "reference", device=str(device.type),
                              experiment=experiment)
    if progress:
        print(f"{experiment}: reference detector in {config.out}", file=sys.stderr, flush=True)
    tic = time.perf_counter()
    reference = train_reference(config, reuse=reuse, progress=progress)
    timings["reference"] = time.perf_counter() - tic
    return config, reference, timings


def load_frozen(run_dir: str | Path, num_classes: int) -> nn.Module:
    """The run's detector from its last checkpoint, in eval mode with every parameter frozen."""
    config = read_config(run_dir)
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"run_dir: no checkpoint in {run_dir} (has the reference trained?)")
    model = build_model(config.model, num_classes, config.losses, image_size=config.image_size, weights=checkpoint,
                        backbone_weights=config.backbone_weights)
    model.eval().requires_grad_(False)
    return model


@torch.no_grad()
def pool_features(model: nn.Module, images: Sequence[torch.Tensor], boxes: Sequence[torch.Tensor]
                  ) -> Mapping[str, torch.Tensor]:
    """The box head's activations for ``boxes[i]`` (xyxy pixels of ``images[i]``), as the detector computes them:
    ``labkit.detection.oracle.pool_rois`` (images resized and normalised by ``model.transform``, the boxes resized
    with them, the backbone, ``box_roi_pool``), then ``fc6`` and ``fc7`` of the box head, each followed by ReLU.

    Returns ``{"fc6": [R, d6], "head": [R, d7]}`` in the order of the boxes, image by image; ``head`` is what the
    box predictor reads. ``model`` must be a torchvision ``FasterRCNN`` with a ``TwoMLPHead`` box head.
    """
    was_training = model.training
    model.eval()
    try:
        pooled, _ = pool_rois(model, images, boxes)
        head = model.roi_heads.box_head
        fc6 = F.relu(head.fc6(pooled.flatten(start_dim=1)))
        return {"fc6": fc6, "head": F.relu(head.fc7(fc6))}
    finally:
        model.train(was_training)
