"""The head study's cost: seconds per (arm, seed) of each setting on cached features, and what the feature cache
saves over running the backbone each time.

A synthetic set of lab-sized images (160 px, the lab scale's RoIs per box) and a ``lab`` detector with random
weights (the cost does not depend on the weights): the training RoIs' box-head features are pooled once
(``draw_roi_set``: backbone + RoI align + fc6/fc7, timed), then setting (a) (full-batch Adam, the lab scale's steps)
and setting (b) (minibatch Adam, the lab scale's epochs) are fitted for ``--seeds`` seeds × the lab grid of label
scales, each timed as one batch and divided by the number of (arm, seed) fits.

Without the cache every pass over the training RoIs would run the backbone again: (a) reads all RoIs at each of its
``steps`` steps, (b) once per epoch (the whole batch of arms shares each pass). The speed-up is
(passes × pooling + fit) / (pooling + fit), from the measured times. ``lab_grid_fit_s_estimate`` extrapolates the whole
lab grid (7 conditions × 10 label scales × 20 seeds, both settings) linearly in the number of RoIs.
Last line: one JSON object.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from labkit.detection.data import load_dataset  # noqa: E402
from labkit.detection.model import build_model  # noqa: E402
from labkit.detection.synthetic import generate_synthetic  # noqa: E402
from labkit.experiments.headstudy.design import HEAD_SCALES, Condition, head_loss  # noqa: E402
from labkit.experiments.headstudy.fitting import fit_linear, fit_mlp  # noqa: E402
from labkit.experiments.headstudy.rois import draw_roi_set  # noqa: E402
from labkit.experiments.headstudy.study import noisy_targets  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="training images (the lab scale has 2000)")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lab = HEAD_SCALES["lab"]
    with tempfile.TemporaryDirectory() as tmp:
        root = generate_synthetic(Path(tmp) / "data", n_train=args.images, n_val=1, workers=1,
                                  image_size=lab.synthetic["image_size"])
        dataset = load_dataset(root, "train")
        torch.manual_seed(0)
        model = build_model("lab", len(dataset.categories) + 1, image_size=lab.synthetic["image_size"]).eval()
        tic = time.perf_counter()
        rois = draw_roi_set(model, dataset, lab.train_rois_per_box, seed=0)
        pooling = time.perf_counter() - tic
    seeds = list(range(args.seeds))
    configs = [head_loss(s) for s in lab.label_scales]
    targets = noisy_targets(rois, Condition("laplace", 0.1), seeds)
    fits = len(seeds) * len(configs)
    tic = time.perf_counter()
    fit_linear(rois.head, rois.labels, targets, configs, lab.linear_steps, lab.linear_lr, len(dataset.categories))
    seconds_a = time.perf_counter() - tic
    tic = time.perf_counter()
    fit_mlp(rois.fc6, rois.labels, targets, configs, seeds, lab.mlp_epochs, lab.mlp_batch, lab.mlp_lr,
            len(dataset.categories))
    seconds_b = time.perf_counter() - tic
    grid_fits = len(lab.conditions) * len(configs) * lab.seeds
    to_lab = lab.synthetic["n_train"] / args.images
    result = {
        "benchmark": "head_study",
        "train_images": args.images, "train_rois": len(rois), "seeds": len(seeds), "label_scales": len(configs),
        "pooling_s": round(pooling, 3),
        "a_linear_s_per_arm_seed": round(seconds_a / fits, 4),
        "b_mlp_s_per_arm_seed": round(seconds_b / fits, 4),
        "a_linear_cache_speedup": round((lab.linear_steps * pooling + seconds_a) / (pooling + seconds_a), 1),
        "b_mlp_cache_speedup": round((lab.mlp_epochs * pooling + seconds_b) / (pooling + seconds_b), 1),
        "lab_grid_fit_s_estimate": round(to_lab * (seconds_a + seconds_b) / fits * grid_fits, 0),
        "lab_pooling_s_estimate": round(to_lab * pooling * (1 + lab.val_rois_per_box / lab.train_rois_per_box
                                                            * lab.synthetic["n_val"] / lab.synthetic["n_train"]), 0),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU used",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
