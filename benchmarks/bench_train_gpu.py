"""Training throughput of resnet50_fpn Faster R-CNN at 800 px on one CUDA GPU, in arms that differ in one thing each.

Comparisons (each ratio is images/s of the arm over its baseline, named in the JSON with what differs):

- ``labkit_vs_stock_fp32``: torchvision's ``fasterrcnn_resnet50_fpn`` (``stock_fp32``) vs labkit's
  ``build_model("resnet50_fpn", ...)`` (``labkit_fp32``) with torchvision's own box-loss settings
  (``labkit.interpret.exports.TORCHVISION_DEFAULTS``: β = 1/9 in both stages, RoI weights (10, 10, 5, 5), λ = 1),
  both float32 and contiguous. What differs is labkit's code only (its RPN/RoI heads, and its RoI align, which is
  torchvision's op on CUDA); the two arms' first-step losses must agree, or the benchmark stops with an error;
- ``amp_vs_fp32``: ``labkit_fp32`` vs ``labkit_amp`` (float16 autocast + GradScaler), nothing else changed;
- ``channels_last_vs_contiguous_amp``: ``labkit_amp`` vs ``labkit_amp_channels_last``, the memory format that
  ``labkit.detection.engine`` trains with on CUDA.

Every arm starts from the same randomly initialised weights (no downloads), trains on the same synthetic batch with
SGD, and seeds the samplers alike; images/s from the median step time after warm-up, peak GPU memory per arm. A
missing piece (labkit not importable) is an error, never a substitute arm. Without CUDA it prints why and a JSON line
with ``"skipped": true``. Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from torchvision.models.detection import fasterrcnn_resnet50_fpn

from labkit.detection.engine import train_one_iteration
from labkit.detection.losses import BoxLossConfig, BoxLosses
from labkit.detection.model import build_model
from labkit.interpret.exports import TORCHVISION_DEFAULTS

NUM_CLASSES = 91
IMAGE_SIZE = 800
#: torchvision's stock box losses in labkit's terms (the implementation form (λ/α)·H_α, eq. 37)
STOCK_LOSSES = BoxLosses(rpn=BoxLossConfig(TORCHVISION_DEFAULTS["rpn"]),
                         detection=BoxLossConfig(TORCHVISION_DEFAULTS["detection"]))
#: arm name: (model, float16 autocast + GradScaler, channels_last)
ARMS = {
    "stock_fp32": ("stock", False, False),
    "labkit_fp32": ("labkit", False, False),
    "labkit_amp": ("labkit", True, False),
    "labkit_amp_channels_last": ("labkit", True, True),
}
#: ratio name: (baseline arm, arm, the one thing that differs)
COMPARISONS = {
    "labkit_vs_stock_fp32": ("stock_fp32", "labkit_fp32",
                             "torchvision's heads vs labkit's at torchvision's loss settings (fp32, contiguous)"),
    "amp_vs_fp32": ("labkit_fp32", "labkit_amp", "float32 vs float16 autocast + GradScaler"),
    "channels_last_vs_contiguous_amp": ("labkit_amp", "labkit_amp_channels_last",
                                        "contiguous vs channels_last memory format (AMP)"),
}
#: first-step losses of the stock and labkit fp32 arms must agree this closely (relative): same computation
SAME_LOSS_RTOL = 1e-3


def stock_model(image_size: int = IMAGE_SIZE) -> torch.nn.Module:
    """torchvision's model; its transform resizes to ``image_size`` (800: torchvision's default min_size, so the
    benchmark's square 800 px images pass through unchanged), ``max_size`` as labkit's builder sets it."""
    return fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=NUM_CLASSES,
                                   min_size=image_size, max_size=round(image_size * 1333 / 800))


def labkit_model(image_size: int = IMAGE_SIZE) -> torch.nn.Module:
    return build_model("resnet50_fpn", NUM_CLASSES, STOCK_LOSSES, image_size=image_size)


def synthetic_batch(batch: int, device: torch.device, image_size: int = IMAGE_SIZE):
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(3, image_size, image_size, generator=gen).to(device) for _ in range(batch)]
    targets = []
    for _ in range(batch):
        corner = torch.rand(5, 2, generator=gen) * (image_size * 5 / 8)
        size = torch.rand(5, 2, generator=gen) * (image_size * 5 / 16) + image_size / 50
        targets.append({"boxes": torch.cat([corner, corner + size], 1).to(device),
                        "labels": torch.randint(1, NUM_CLASSES, (5,), generator=gen).to(device)})
    return images, targets


LR = 1e-3


def time_arm(model, images, targets, steps: int, warmup: int, amp: bool = False, channels_last: bool = False) -> dict:
    """Train ``model`` for ``warmup + steps`` SGD steps on one batch; median step time of the last ``steps``, the
    first step's losses. ``amp``: float16 autocast with a GradScaler — CUDA only: refused elsewhere rather than
    silently run in float32. ``channels_last`` runs on any device."""
    device = images[0].device
    cuda = device.type == "cuda"
    if amp and not cuda:
        raise ValueError(f"amp: float16 autocast + GradScaler need CUDA; the images are on {device}")
    model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda") if amp else None
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)  # the RPN's and RoI heads' samplers draw the same anchors and RoIs in every arm
    times, first, record = [], None, None
    for i in range(warmup + steps):
        sync()
        start = time.perf_counter()
        # the training loop's own step (labkit.detection.engine): the same SGD step, autocast and scaler in every arm
        record = train_one_iteration(model, optimizer, images, targets, LR, scaler=scaler, amp=amp)
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - start)
        if first is None:
            first = {k: v for k, v in record.items() if k != "loss"}
    step = statistics.median(times)
    return {
        "step_s": round(step, 4),
        "images_per_s": round(len(images) / step, 2),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 3) if cuda else None,
        "first_losses": first,
        "last_loss": record["loss"],
    }


def run_arms(names, images, targets, steps: int, warmup: int, image_size: int = IMAGE_SIZE) -> dict[str, dict]:
    """Time the arms ``names`` (keys of :data:`ARMS`), each built afresh from the same initial weights."""
    torch.manual_seed(0)
    initial = stock_model(image_size).state_dict()
    results = {}
    for name in names:
        kind, amp, channels_last = ARMS[name]
        model = stock_model(image_size) if kind == "stock" else labkit_model(image_size)
        model.load_state_dict(initial)  # strict: the two architectures hold the same parameters
        results[name] = time_arm(model, images, targets, steps, warmup, amp=amp, channels_last=channels_last)
        del model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if {"stock_fp32", "labkit_fp32"} <= set(results):
        check_same_losses(results["stock_fp32"], results["labkit_fp32"])
    return results


def check_same_losses(stock: dict, labkit: dict, rtol: float = SAME_LOSS_RTOL) -> float:
    """The largest relative difference of the first-step losses; an error above ``rtol`` (the arms would then
    compute different things, and their ratio would not be labkit's cost)."""
    worst = max(abs(labkit["first_losses"][k] - v) / max(abs(v), 1e-12) for k, v in stock["first_losses"].items())
    if set(stock["first_losses"]) != set(labkit["first_losses"]) or worst > rtol:
        raise RuntimeError(f"stock and labkit fp32 arms disagree (relative {worst:.2e} > {rtol}): "
                           f"{stock['first_losses']} vs {labkit['first_losses']}")
    return worst


def comparisons(results: dict[str, dict]) -> dict[str, dict]:
    """Each :data:`COMPARISONS` entry whose two arms ran: baseline, arm, what differs, ratio of images/s."""
    out = {}
    for name, (base, arm, differs) in COMPARISONS.items():
        if base in results and arm in results:
            out[name] = {"baseline": base, "arm": arm, "differs_in": differs,
                         "ratio": round(results[arm]["images_per_s"] / results[base]["images_per_s"], 3)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_train_gpu: skipped, CUDA is not available on this machine")
        print(json.dumps({"benchmark": "train_step_gpu", "skipped": True, "reason": "CUDA not available",
                          "machine": f"{platform.machine()}, torch {torch.__version__}"}))
        return
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    images, targets = synthetic_batch(args.batch, device)
    results = run_arms(list(ARMS), images, targets, args.steps, args.warmup)
    print(json.dumps({
        "benchmark": "train_step_gpu",
        "skipped": False,
        "model": "resnet50_fpn",
        "image_size": IMAGE_SIZE,
        "batch": args.batch,
        "arms": results,
        "stock_vs_labkit_first_step_loss_rel_diff": check_same_losses(results["stock_fp32"], results["labkit_fp32"]),
        "comparisons": comparisons(results),
        "device": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
