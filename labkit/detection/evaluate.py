"""COCO evaluation of a detector: AP, AP50, AP75 and all 12 COCOeval stats (labkit.detection.cocoeval: the fast
faster-coco-eval backend by default, pycocotools as the reference; the two agree to 1e-9), and the localization
error of its true positives (labkit.detection.localization) and of every ground-truth box given as the RoI
(labkit.detection.oracle), and for a model with learned uncertainty
(labkit.detection.uncertainty) the likelihood, calibration and sharpness of its predicted scales
(labkit.detection.calibration: the ``unc_*`` keys).

:func:`evaluate_run` (``python -m labkit evaluate --run runs/NAME``) rebuilds the run's model from ``config.json``, loads its last
checkpoint, evaluates on the validation split and writes ``metrics.json`` (atomically; an evaluation on another
split or with other variance voting goes beside it, :func:`metrics_file`).
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from labkit._io import write_json
from labkit.detection.calibration import uncertainty_metrics
from labkit.detection.cocoeval import FAST, STAT_NAMES, evaluate_detections
from labkit.detection.config import read_config
from labkit.detection.data import load_dataset, make_loader
from labkit.detection.localization import localization_metrics
from labkit.detection.model import build_model
from labkit.detection.oracle import oracle_localization
from labkit.detection.runs import latest_checkpoint, resolve_device
from labkit.detection.uncertainty import LearnedScaleRoIHeads

__all__ = ["STAT_NAMES", "predict", "evaluate", "load_run", "metrics_file", "evaluate_run"]

#: COCO result key ← model output key, for a model with learned uncertainty
_SCALE_KEYS = (("bbox_scales", "box_scales"), ("target_scales", "box_target_scales"))


def _check_dataset(dataset: Any) -> None:
    for attr in ("coco", "label_to_category_id"):
        if not hasattr(dataset, attr):
            raise TypeError(f"dataset must have a `{attr}` attribute (a labkit.detection.data.DetectionDataset), "
                            f"got {type(dataset).__name__}")


@torch.no_grad()
def predict(model: torch.nn.Module, dataset: Any, device: str | torch.device | None = None, batch_size: int = 4,
            progress: bool = False) -> tuple[list[dict[str, Any]], list[int]]:
    """Run ``model`` (eval mode) over ``dataset``; return COCO-format results (xywh boxes, category ids, scores)
    and the image ids seen. A model with learned uncertainty adds ``bbox_scales`` (the predicted scales of centre
    x, centre y, width, height in pixels) and ``target_scales`` (the same in the head's σ-scaled target units)."""
    _check_dataset(dataset)
    if device is None:
        device = next(model.parameters()).device
    loader = make_loader(dataset, batch_size=batch_size, device=device)
    was_training = model.training
    model.eval()
    results, image_ids = [], []
    try:
        for images, targets in tqdm(loader, desc="evaluate", disable=None if progress else True, leave=False):
            outputs = model([im.to(device) for im in images])
            for target, out in zip(targets, outputs):
                image_id = int(target["image_id"])
                image_ids.append(image_id)
                boxes = out["boxes"].detach().float().cpu().clone()  # never edit the model's output
                boxes[:, 2:] -= boxes[:, :2]  # xyxy -> xywh
                scales = {key: out[name].detach().float().cpu().tolist() for key, name in _SCALE_KEYS if name in out}
                for k, (box, label, score) in enumerate(zip(boxes.tolist(), out["labels"].tolist(),
                                                            out["scores"].tolist())):
                    results.append({"image_id": image_id, "category_id": dataset.label_to_category_id[int(label)],
                                    "bbox": [round(v, 3) for v in box], "score": round(score, 5),
                                    **{key: [round(v, 5) for v in rows[k]] for key, rows in scales.items()}})
    finally:
        model.train(was_training)
    return results, image_ids


def evaluate(model: torch.nn.Module, dataset: Any, device: str | torch.device | None = None, batch_size: int = 4,
             progress: bool = False, backend: str = FAST, oracle: bool = True) -> dict[str, Any]:
    """COCO bbox evaluation of ``model`` on ``dataset`` (a DetectionDataset: items (image, target), ``.coco``
    ground truth, ``.label_to_category_id``). Returns the 12 stats (AP, AP50, AP75, …), the localization of the
    true positives at IoU 0.5 (``loc_err``, ``loc_iou``, ``loc_recall``: :mod:`labkit.detection.localization`),
    ``num_images``, ``num_detections`` and ``seconds``. ``backend``: ``"fast"`` (faster-coco-eval) or ``"pycocotools"``.
    A model with learned uncertainty adds the ``unc_*`` metrics of
    :func:`labkit.detection.calibration.uncertainty_metrics` (its true positives at IoU 0.5). ``oracle``: also the
    error on every ground-truth box given as the RoI (``oracle_loc_err``, :mod:`labkit.detection.oracle`)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got batch_size={batch_size!r}")
    start = time.perf_counter()
    results, image_ids = predict(model, dataset, device=device, batch_size=batch_size, progress=progress)
    stats = evaluate_detections(dataset.coco, results, backend=backend, image_ids=image_ids)
    # no true positive leaves loc_err / loc_iou undefined: null in metrics.json (JSON has no NaN)
    stats.update({k: None if math.isnan(v) else v
                  for k, v in localization_metrics(dataset.coco, results, image_ids=image_ids).items()})
    if oracle and all(hasattr(model, a) for a in ("transform", "backbone", "roi_heads")):  # a detector, not a replay
        stats.update(oracle_localization(model, dataset, device=device, batch_size=batch_size))
    heads = getattr(model, "roi_heads", None)
    if isinstance(heads, LearnedScaleRoIHeads):
        unc = uncertainty_metrics(dataset.coco, results, heads.uncertainty.distribution, image_ids=image_ids)
        stats.update({k: _json_number(v) for k, v in unc.items()})
    stats.update(num_images=len(image_ids), num_detections=len(results), seconds=time.perf_counter() - start)
    return stats


def _json_number(value: Any) -> Any:
    # JSON has no NaN: an undefined metric (no true positive) is null, in nested mappings too
    if isinstance(value, dict):
        return {k: _json_number(v) for k, v in value.items()}
    return None if isinstance(value, float) and math.isnan(value) else value


def load_run(run_dir: str | Path, split: str | None = None, device: str = "auto", var_voting: bool | None = None
             ) -> tuple[torch.nn.Module, Any, str, Path]:
    """(model, dataset, split, checkpoint): the model of ``run_dir`` rebuilt from its ``config.json`` with its last
    checkpoint, on ``device``, and the run's ``split`` dataset (default: its ``val_split``). ``var_voting``: for a
    learned-uncertainty run, variance voting on or off (default: as the run was configured)."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    split = split or config.val_split
    if not split:
        raise ValueError(f"split: the run {run_dir} has no val_split; pass split=")
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"run: no checkpoint in {run_dir / 'checkpoints'} (has the run trained?)")
    dev = resolve_device(device)
    uncertainty = config.uncertainty_config
    if var_voting is not None:
        if uncertainty is None:
            raise ValueError(f"var_voting: the run {run_dir} has no learned uncertainty (variance voting needs "
                             "predicted scales)")
        uncertainty = replace(uncertainty, var_voting=bool(var_voting))
    dataset = load_dataset(config.data, split=split)
    model = build_model(config.model, len(dataset.categories) + 1, config.losses, image_size=config.image_size,
                        weights=checkpoint, backbone_weights=config.backbone_weights, uncertainty=uncertainty)
    return model.to(dev), dataset, split, checkpoint


def metrics_file(run_dir: str | Path, split: str | None = None, var_voting: bool | None = None) -> Path:
    """Where :func:`evaluate_run` writes: ``metrics.json`` for the evaluation the run was configured with (its
    ``val_split``, its own variance-voting setting), which the runner and the tables read; any other evaluation
    beside it, never over it: ``metrics-<split>.json``, with ``-voting`` or ``-no-voting`` when the voting
    differs from the run's."""
    config = read_config(run_dir)
    split = split or config.val_split
    learned = config.uncertainty_config
    other_voting = var_voting is not None and learned is not None and bool(var_voting) != learned.var_voting
    if split == config.val_split and not other_voting:
        return Path(run_dir) / "metrics.json"
    suffix = ("-voting" if var_voting else "-no-voting") if other_voting else ""
    return Path(run_dir) / f"metrics-{split}{suffix}.json"


def evaluate_run(run_dir: str | Path, split: str | None = None, device: str = "auto", batch_size: int = 4,
                 progress: bool = False, var_voting: bool | None = None) -> dict[str, Any]:
    """Evaluate the last checkpoint of ``run_dir`` on ``split`` (default: the run's ``val_split``) and write the
    metrics to :func:`metrics_file` (``metrics.json`` when evaluated as configured). Returns the metrics, with
    ``file`` naming where they were written. ``var_voting``: as for :func:`load_run`."""
    model, dataset, split, checkpoint = load_run(run_dir, split, device, var_voting)
    metrics = evaluate(model, dataset, batch_size=batch_size, progress=progress)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    metrics.update(split=split, checkpoint=checkpoint.name, iteration=int(state["iteration"]))
    heads = getattr(model, "roi_heads", None)
    if isinstance(heads, LearnedScaleRoIHeads):
        metrics.update(var_voting=heads.uncertainty.var_voting)
    path = metrics_file(run_dir, split, var_voting)
    write_json(path, metrics)
    return {**metrics, "file": str(path)}
