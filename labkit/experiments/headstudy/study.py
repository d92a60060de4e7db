"""The head study end to end: data, the clean reference detector, cached RoI features, every fit, the analysis and
the result files (``python -m labkit experiment head-study``).

Order of work: (1) the synthetic data and the reference detector (trained once, reused while the commit and its
config stay the same); (2) training and validation RoIs with the frozen box head's features, computed once and
cached in ``<out>/runs/features.pt`` (reused while the reference checkpoint and the RoI settings are the same);
(3) per condition, one batched fit of every (seed, label scale) arm in setting (a) and one in setting (b)
(:mod:`.fitting`), each evaluated on the clean validation RoIs; (4) setting (a) refitted with 3× the steps for
three seeds of every noisy Laplace condition (the convergence check); (5) a few retrained heads put back into the
detector for COCO AP75; (6) the analysis and files (:mod:`.report`).
"""
from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from labkit._io import write_atomic
from labkit.detection.data import load_dataset
from labkit.detection.evaluate import evaluate
from labkit.detection.losses import make_box_coder
from labkit.detection.oracle import JITTER_RESIZE, JITTER_SHIFT, MIN_IOU
from labkit.detection.runs import latest_checkpoint, resolve_device
from labkit.detection.synthetic import DEFAULT_SYNTHETIC
from labkit.experiments.headstudy.design import (LAPLACE, LINEAR_SETTING, MLP_SETTING, Condition, HeadScale,
                                                 head_loss, resolve_head_scale)
from labkit.experiments.headstudy.fitting import fit_linear, fit_mlp
from labkit.experiments.headstudy.reference import load_frozen, prepare_reference
from labkit.experiments.headstudy.report import build_results, write_head_study
from labkit.experiments.headstudy.rois import RoISet, box_errors, draw_roi_set, encode, noisy_boxes
from labkit.provenance import describe

__all__ = ["FEATURES_FILE", "CACHE_VERSION", "check_seeds", "frozen_roi_sets", "run_head_study", "roi_sets",
           "noisy_targets", "reference_residuals"]

FEATURES_FILE = "features.pt"
CACHE_VERSION = 1
_ROI_SEEDS = {"train": 1_000, "val": 2_000}


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``fn(*args, **kwargs)`` and its wall time in seconds."""
    tic = time.perf_counter()
    return fn(*args, **kwargs), time.perf_counter() - tic


def _say(progress: bool, message: str) -> None:
    if progress:
        print(f"head-study: {message}", file=sys.stderr, flush=True)


def _fingerprint(checkpoint: Path, scale: HeadScale) -> dict[str, Any]:
    return {"version": CACHE_VERSION, "checkpoint": checkpoint.name,
            "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
            "per_box": [scale.train_rois_per_box, scale.val_rois_per_box], "min_iou": MIN_IOU,
            "jitter": [JITTER_SHIFT, JITTER_RESIZE], "seeds": dict(_ROI_SEEDS)}


def roi_sets(model: torch.nn.Module, data: Path, scale: HeadScale, checkpoint: Path, cache: Path,
             progress: bool = False) -> tuple[dict[str, RoISet], bool]:
    """Training and validation :class:`RoISet` of the frozen ``model``, read from ``cache`` when it was written
    for the same checkpoint and RoI settings, else drawn and written there (atomically). Returns (sets, reused)."""
    key = _fingerprint(checkpoint, scale)
    if cache.is_file():
        saved = torch.load(cache, map_location="cpu", weights_only=True)
        if saved.get("key") == key:
            return {split: RoISet.from_dict(saved[split]) for split in _ROI_SEEDS}, True
    sets = {}
    for split, per_box in (("train", scale.train_rois_per_box), ("val", scale.val_rois_per_box)):
        dataset = load_dataset(data, split=split)
        _say(progress, f"pooling {split} RoIs of {len(dataset)} images")
        sets[split] = draw_roi_set(model, dataset, per_box, _ROI_SEEDS[split])
    write_atomic(cache, lambda f: torch.save({"key": key, **{k: v.to_dict() for k, v in sets.items()}}, f))
    return sets, False


def frozen_roi_sets(reference: dict[str, Any], data: Path, scale: Any, num_classes: int, out: Path, reuse: str,
                    progress: bool = False) -> tuple[torch.nn.Module, dict[str, RoISet], bool, float]:
    """The frozen reference of ``reference`` (:func:`~.reference.prepare_reference`) and its training and validation
    :class:`RoISet` from ``out``/runs/features.pt (:func:`roi_sets`; dropped first when ``reuse`` is "never").
    Returns (model, sets, reused from the cache, seconds spent on the sets). ``num_classes`` counts the background."""
    model = load_frozen(reference["run_dir"], num_classes)
    cache = Path(out) / "runs" / FEATURES_FILE
    if reuse == "never":
        cache.unlink(missing_ok=True)
    (sets, cached), seconds = timed(roi_sets, model, data, scale, latest_checkpoint(reference["run_dir"]), cache,
                                    progress)
    return model, sets, cached, seconds


def noisy_targets(rois: RoISet, condition: Condition, seeds: Sequence[int]) -> torch.Tensor:
    """Training targets [S, N, 4] (σ = 1): each ground-truth box's noisy label for each seed, encoded against
    each of its RoIs."""
    gt = rois.gt_boxes.numpy().astype(np.float64)
    out = []
    for seed in seeds:
        noisy = torch.as_tensor(noisy_boxes(gt, condition, seed), dtype=torch.float64)
        out.append(encode(noisy[rois.owner], rois.rois.to(torch.float64)).to(torch.float32))
    return torch.stack(out)


def reference_residuals(model: torch.nn.Module, rois: RoISet) -> torch.Tensor:
    """Signed errors [R, 4] of the reference detector's own regressor on ``rois``, in units of the true box."""
    deltas = model.roi_heads.box_predictor.bbox_pred(rois.head)
    index = (rois.labels[:, None] * 4 + torch.arange(4))
    coder_weights = torch.as_tensor(model.roi_heads.box_coder.weights, dtype=deltas.dtype)
    predicted = deltas.gather(1, index) / coder_weights
    ratio = torch.cat([(rois.rois[:, 2:] - rois.rois[:, :2]) / (rois.boxes[:, 2:] - rois.boxes[:, :2])] * 2, dim=1)
    return (predicted - rois.targets) * ratio


def _val_errors(predicted: torch.Tensor, val: RoISet) -> torch.Tensor:
    """Per arm, mean |Δ|/w over validation RoIs per coordinate [M, 4]."""
    return box_errors(predicted, val.targets, val.rois, val.boxes).mean(dim=1)


def _rows(setting: str, condition: Condition, scales: Sequence, seeds: Sequence[int], errors: torch.Tensor,
          losses: torch.Tensor, seconds: float) -> list[dict[str, Any]]:
    rows, per_fit = [], seconds / max(1, len(errors))
    for m, (err, loss) in enumerate(zip(errors.tolist(), losses.tolist())):
        seed, scale = seeds[m // len(scales)], scales[m % len(scales)]
        rows.append({"setting": setting, "condition": condition.name, "kind": condition.kind,
                     "label_noise": condition.scale, "label_scale": str(scale), "seed": int(seed),
                     "val_err": float(np.mean(err)), "err_x": err[0], "err_y": err[1], "err_w": err[2],
                     "err_h": err[3], "train_loss": loss, "seconds_per_fit": per_fit})
    return rows


def _ap75(model: torch.nn.Module, fit: Any, arm: int, val_dataset: Any, device: torch.device) -> dict[str, Any]:
    """COCO stats of the reference detector with its box regressor replaced by arm ``arm`` of ``fit``."""
    predictor = model.roi_heads.box_predictor.bbox_pred
    saved = (predictor.weight.detach().clone(), predictor.bias.detach().clone())
    weight, bias = fit.detector_weights(arm, model.roi_heads.box_coder.weights)
    try:
        with torch.no_grad():
            predictor.weight.copy_(weight)
            predictor.bias.copy_(bias)
        metrics = evaluate(model, val_dataset, device=device)
    finally:
        with torch.no_grad():
            predictor.weight.copy_(saved[0])
            predictor.bias.copy_(saved[1])
    return {k: metrics.get(k) for k in ("AP", "AP50", "AP75", "loc_err", "loc_iou")}


def _convergence_check(scale: HeadScale, condition: Condition, train_set: RoISet, val: RoISet,
                       targets: torch.Tensor, errors: torch.Tensor, configs: Sequence, seeds: Sequence[int],
                       num_classes: int) -> dict[str, Any]:
    """Setting (a) refitted for the first ``seeds`` with 3× the steps: how much the validation error of each arm
    moves (``errors`` [S·A]: the study's fit), against its spread over label scales, and whether the argmin over
    label scales (mean over these seeds) stays put."""
    n_arms = len(configs)
    longer, seconds = timed(fit_linear, train_set.head, train_set.labels, targets[:len(seeds)], configs,
                            3 * scale.linear_steps, scale.linear_lr, num_classes)
    again = _val_errors(longer.predict(val.head, val.labels), val).mean(1)
    before = errors[:len(again)]
    mean_before, mean_again = before.view(-1, n_arms).mean(0), again.view(-1, n_arms).mean(0)
    return {"condition": condition.name, "seeds": list(seeds), "steps": [scale.linear_steps, 3 * scale.linear_steps],
            "max_abs_change_val_err": float((again - before).abs().max()), "seconds": seconds,
            "spread_over_label_scales": float(mean_before.max() - mean_before.min()),
            "argmin_index": [int(mean_before.argmin()), int(mean_again.argmin())]}


def check_seeds(seeds: int | Sequence[int] | None, scale: Any) -> list[int]:
    """``seeds`` (a count or the seeds; None: ``scale.seeds``) as a list, checked against ``scale.min_seeds``
    (any scale with ``name``, ``seeds`` and ``min_seeds``: the head study's, the uncertainty study's)."""
    if seeds is None:
        seeds = scale.seeds
    if isinstance(seeds, bool):
        raise ValueError(f"seeds must be a count or a sequence of ints, got seeds={seeds!r}")
    out = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if len(out) < scale.min_seeds or len(set(out)) < len(out) or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in out):
        raise ValueError(f"seeds: scale {scale.name!r} needs >= {scale.min_seeds} distinct seeds >= 0 (paired "
                         f"bootstrap intervals over seeds), got seeds={seeds!r}")
    return out


def run_head_study(scale: str | HeadScale = "smoke", seeds: int | Sequence[int] | None = None,
                   out: str | Path | None = None, device: str = "cpu", reuse: str = "same-commit",
                   progress: bool = True) -> dict[str, Any]:
    """Run the head study at ``scale`` (``"smoke"`` or ``"lab"``, or a :class:`HeadScale`) for ``seeds`` (a count
    or the seeds; default the scale's) and write ``runs.csv``, ``summary.csv``, ``results.json`` and
    ``head_study.png`` under ``out`` (default ``runs/head-study-<scale>``). ``reuse``: the reference detector
    and feature cache are reused at the same commit (``"same-commit"``), at any commit (``"any"``), or never.
    Returns the results (what ``results.json`` holds)."""
    sc = resolve_head_scale(scale)
    seed_list = check_seeds(seeds, sc)
    out = Path(out if out is not None else Path("runs") / f"head-study-{sc.name}").resolve()
    dev = resolve_device(device)
    started = time.perf_counter()
    data_root = DEFAULT_SYNTHETIC if sc.name == "lab" else out / "runs" / "data"
    config, reference, timings = prepare_reference(sc, out, data_root, dev, reuse, progress=progress)
    val_dataset = load_dataset(data_root, split="val")
    num_classes = len(val_dataset.categories)
    model, sets, cached, timings["features"] = frozen_roi_sets(reference, data_root, sc, num_classes + 1, out, reuse,
                                                               progress)
    train_set, val = sets["train"], sets["val"]
    configs = [head_loss(s) for s in sc.label_scales]
    rows: list[dict[str, Any]] = []
    ap75: list[dict[str, Any]] = []
    convergence: list[dict[str, Any]] = []
    timings.update({LINEAR_SETTING: 0.0, MLP_SETTING: 0.0, "ap75": 0.0})
    for condition in sc.conditions:
        targets = noisy_targets(train_set, condition, seed_list)
        fit, seconds = timed(fit_linear, train_set.head, train_set.labels, targets, configs, sc.linear_steps,
                             sc.linear_lr, num_classes)
        timings[LINEAR_SETTING] += seconds
        errors = _val_errors(fit.predict(val.head, val.labels), val)
        rows += _rows(LINEAR_SETTING, condition, sc.label_scales, seed_list, errors, fit.loss, seconds)
        _say(progress, f"{condition.name}: setting (a) {seconds:.0f} s")
        for name, label_scale in sc.ap75_cells:
            if name != condition.name:
                continue
            for k, seed in enumerate(seed_list[:sc.ap75_seeds]):
                arm = k * len(configs) + list(sc.label_scales).index(label_scale)
                stats, seconds = timed(_ap75, model, fit, arm, val_dataset, dev)
                timings["ap75"] += seconds
                ap75.append({"condition": name, "label_scale": str(label_scale), "seed": seed, **stats})
        if condition.kind == LAPLACE and condition.scale > 0:
            convergence.append(_convergence_check(sc, condition, train_set, val, targets, errors.mean(1), configs,
                                                  seed_list[:3], num_classes))
        fit_b, seconds = timed(fit_mlp, train_set.fc6, train_set.labels, targets, configs, seed_list,
                               sc.mlp_epochs, sc.mlp_batch, sc.mlp_lr, num_classes, train_set.head.shape[1])
        timings[MLP_SETTING] += seconds
        errors_b = _val_errors(fit_b.predict(val.fc6, val.labels), val)
        rows += _rows(MLP_SETTING, condition, sc.label_scales, seed_list, errors_b, fit_b.loss, seconds)
        _say(progress, f"{condition.name}: setting (b) {seconds:.0f} s")
    residuals = reference_residuals(model, val).detach()
    timings["total"] = time.perf_counter() - started
    reference.update(rois_err=residuals.abs().mean(0).tolist(), rois_val_err=float(residuals.abs().mean()),
                     target_coder_weights=list(make_box_coder(config.losses.detection).weights),
                     config=config.to_dict())
    results = build_results(sc, seed_list, rows, residuals.numpy(), reference, ap75, convergence, timings,
                            {"train": len(train_set), "val": len(val), "train_boxes": len(train_set.gt_boxes),
                             "val_boxes": len(val.gt_boxes), "cached": cached,
                             # setting (a): per class, k + 1 weights per coordinate from that class's RoIs
                             "linear_p_over_n": (fit.white.matrix.shape[1] + 1) * num_classes / len(train_set)},
                            describe(str(dev)))
    write_head_study(results, out)
    return results
