"""Training throughput of resnet50_fpn Faster R-CNN at 800 px on one CUDA GPU: labkit's step (AMP + channels_last)
vs torchvision's stock model and stock fp32 step, in the same run.

Both arms start from the same randomly initialised weights (no downloads) and train on the same synthetic batch
with SGD; images/s from the median step time after warm-up, peak GPU memory per arm. labkit's arm is
``labkit.detection.model.build_model("resnet50_fpn", ...)`` when it exists (the paper's box losses), otherwise the
stock architecture. RoI align stays torchvision's on CUDA (labkit's fast path is for CPU). Target: ratio ≥ 1.0.
Without CUDA it prints why and a JSON line with ``"skipped": true``. Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

NUM_CLASSES = 91
IMAGE_SIZE = 800


def stock_model(image_size: int = IMAGE_SIZE) -> torch.nn.Module:
    """torchvision's model; its transform resizes to ``image_size`` (800: torchvision's default min_size, so the
    benchmark's square 800 px images pass through unchanged)."""
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    return fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=NUM_CLASSES,
                                   min_size=image_size, max_size=max(image_size, 1333))


def lab_model(image_size: int = IMAGE_SIZE) -> torch.nn.Module:
    try:
        from labkit.detection.model import build_model
    except ImportError:
        return stock_model(image_size)
    return build_model("resnet50_fpn", NUM_CLASSES, image_size=image_size)


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


def time_arm(model, images, targets, steps: int, warmup: int, amp: bool) -> dict:
    """Train ``model`` for ``warmup + steps`` SGD steps on one batch; median step time of the last ``steps``.
    ``amp``: channels_last weights and float16 autocast with a GradScaler. The benchmark runs it on CUDA; it also
    runs on CPU (channels_last only: bfloat16 autocast is emulated, ~30× slower, on CPUs without native bf16; no
    memory figure), so tests exercise it without a GPU."""
    device = images[0].device
    cuda = device.type == "cuda"
    model.to(device).train()
    if amp:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and cuda)
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(warmup + steps):
        sync()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp and cuda):
            losses = model(images, targets)
            loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    step = statistics.median(times)
    return {
        "step_s": round(step, 4),
        "images_per_s": round(len(images) / step, 2),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 3) if cuda else None,
        "last_loss": loss.item(),
    }


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
    torch.manual_seed(0)
    stock = time_arm(stock_model(), images, targets, args.steps, args.warmup, amp=False)
    torch.cuda.empty_cache()
    torch.manual_seed(0)
    lab = time_arm(lab_model(), images, targets, args.steps, args.warmup, amp=True)
    print(json.dumps({
        "benchmark": "train_step_gpu",
        "skipped": False,
        "model": "resnet50_fpn",
        "image_size": IMAGE_SIZE,
        "batch": args.batch,
        "stock_fp32": stock,
        "labkit_amp_channels_last": lab,
        "ratio": round(lab["images_per_s"] / stock["images_per_s"], 3),
        "target_ratio": 1.0,
        "device": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
