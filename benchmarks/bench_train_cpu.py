"""Training step (forward + backward) of Faster R-CNN on CPU: labkit's RoI align fast path vs stock torchvision ops.

Two models, each timed as an identical pair (same weights, same batch, same sampler seed) that differs only in the
box RoI pooler — ``torchvision.ops.MultiScaleRoIAlign`` vs ``labkit.detection.roi_align.FastMultiScaleRoIAlign``:

- ``lab``: ``labkit.detection.model.build_model("lab", ...)`` at 128 px, as the lab trains it;
- ``issue``: the configuration profiled in issue 7 (4 conv layers up to 128 channels at stride 8, 128 px, batch 8,
  128 sampled RoIs per image, 7 × 7 bins with 2 × 2 samples), built here from torchvision parts.

Steps alternate stock / fast so both see the same machine load; medians of wall time (and of process CPU time).
Losses of every step must agree to float tolerance. Process settings are the same for both arms and reported:
``OMP_WAIT_POLICY=PASSIVE`` and ``THP_MEM_ALLOC_ENABLE=1`` are set before torch loads unless already set (both
matter on a shared 2-core machine; see the module docstring of labkit.detection.roi_align and the report).
Last line: one JSON object.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep instead of spinning
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # torch's CPU allocator asks for huge pages: fewer page faults

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torchvision.models.detection import FasterRCNN  # noqa: E402
from torchvision.models.detection.anchor_utils import AnchorGenerator  # noqa: E402
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead  # noqa: E402
from torchvision.ops import MultiScaleRoIAlign  # noqa: E402

from labkit.detection.roi_align import FastMultiScaleRoIAlign  # noqa: E402

IMAGE_SIZE, BATCH, NUM_CLASSES = 128, 8, 4


def issue_model() -> FasterRCNN:
    """The model profiled in issue 7: conv/BN/ReLU ×4 (32, 64, 128, 128 channels, stride 8), 128 RoIs per image."""
    layers: list[nn.Module] = []
    for c_in, c_out, stride in ((3, 32, 2), (32, 64, 2), (64, 128, 2), (128, 128, 1)):
        layers += [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    backbone = nn.Sequential(*layers)
    backbone.out_channels = 128
    return FasterRCNN(
        backbone,
        min_size=IMAGE_SIZE,
        max_size=IMAGE_SIZE,
        rpn_anchor_generator=AnchorGenerator(sizes=((8, 16, 32, 64),), aspect_ratios=((0.5, 1.0, 2.0),)),
        box_roi_pool=MultiScaleRoIAlign(["0"], 7, 2),
        box_head=TwoMLPHead(128 * 7 * 7, 256),
        box_predictor=FastRCNNPredictor(256, NUM_CLASSES),
        rpn_pre_nms_top_n_train=600,
        rpn_post_nms_top_n_train=300,
        rpn_batch_size_per_image=128,
        box_batch_size_per_image=128,
    )


def lab_model() -> FasterRCNN:
    from labkit.detection.model import build_model

    return build_model("lab", NUM_CLASSES, image_size=IMAGE_SIZE)


def _with_pooler(model: FasterRCNN, kind: type[MultiScaleRoIAlign]) -> FasterRCNN:
    """A copy of ``model`` (same weights) whose box RoI pooler is a ``kind`` with the model's pooler settings."""
    copied = copy.deepcopy(model)
    pool = model.roi_heads.box_roi_pool
    copied.roi_heads.box_roi_pool = kind(
        pool.featmap_names, pool.output_size, pool.sampling_ratio,
        canonical_scale=pool.canonical_scale, canonical_level=pool.canonical_level,
    )
    return copied


def with_stock_pooler(model: FasterRCNN) -> FasterRCNN:
    """A copy of ``model`` on torchvision's ``MultiScaleRoIAlign`` (the lab model is built with labkit's)."""
    return _with_pooler(model, MultiScaleRoIAlign)


def with_fast_pooler(model: FasterRCNN) -> FasterRCNN:
    """A copy of ``model`` on labkit's ``FastMultiScaleRoIAlign``."""
    return _with_pooler(model, FastMultiScaleRoIAlign)


def batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    images = [torch.rand(3, IMAGE_SIZE, IMAGE_SIZE, generator=gen) for _ in range(BATCH)]
    targets = []
    for _ in range(BATCH):
        corner = torch.rand(3, 2, generator=gen) * 80
        size = torch.rand(3, 2, generator=gen) * 40 + 8
        targets.append({"boxes": torch.cat([corner, corner + size], 1),
                        "labels": torch.randint(1, NUM_CLASSES, (3,), generator=gen)})
    return images, targets


def train_step(model: FasterRCNN, images, targets) -> tuple[float, float, float]:
    """One forward + backward from the same sampler seed; returns (loss, wall s, CPU s). Weights are not updated,
    so every repeat computes the same loss."""
    torch.manual_seed(1)  # RPN and RoI samplers draw from the global generator
    wall, cpu = time.perf_counter(), time.process_time()
    losses = model(images, targets)
    loss = sum(losses.values())
    model.zero_grad(set_to_none=True)
    loss.backward()
    return loss.item(), time.perf_counter() - wall, time.process_time() - cpu


def compare(name: str, build, repeats: int, warmup: int) -> dict:
    torch.manual_seed(0)
    model = build()
    stock, fast = with_stock_pooler(model).train(), with_fast_pooler(model).train()
    assert type(stock.roi_heads.box_roi_pool) is MultiScaleRoIAlign
    assert type(fast.roi_heads.box_roi_pool) is FastMultiScaleRoIAlign
    images, targets = batch()
    runs = {"stock": [], "fast": []}
    for i in range(warmup + repeats):
        for arm, model in (("stock", stock), ("fast", fast)):
            result = train_step(model, images, targets)
            if i >= warmup:
                runs[arm].append(result)
    losses = {arm: [r[0] for r in rs] for arm, rs in runs.items()}
    max_rel = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(losses["fast"], losses["stock"]))
    wall = {arm: statistics.median(r[1] for r in rs) for arm, rs in runs.items()}
    cpu = {arm: statistics.median(r[2] for r in rs) for arm, rs in runs.items()}
    out = {
        "model": name,
        "stock_step_s": round(wall["stock"], 4),
        "fast_step_s": round(wall["fast"], 4),
        "ratio": round(wall["stock"] / wall["fast"], 3),
        "ratio_cpu_time": round(cpu["stock"] / cpu["fast"], 3),
        "loss": losses["stock"][0],
        "loss_max_rel_diff": max_rel,
        "losses_equal": max_rel <= 1e-5,
    }
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--models", nargs="+", default=["lab", "issue"], choices=["lab", "issue"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    builders = {"lab": lab_model, "issue": issue_model}
    results = [compare(name, builders[name], args.repeats, args.warmup) for name in args.models]
    summary = {
        "benchmark": "train_step_cpu",
        "image_size": IMAGE_SIZE,
        "batch": BATCH,
        "results": results,
        "target_ratio": 3.0,
        "target_met": {r["model"]: r["ratio"] >= 3.0 and r["losses_equal"] for r in results},
        "threads": torch.get_num_threads(),
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "THP_MEM_ALLOC_ENABLE", "OMP_NUM_THREADS")},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU, torch {torch.__version__}",
        "repeats": args.repeats,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
