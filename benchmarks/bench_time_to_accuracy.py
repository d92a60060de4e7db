"""Time to accuracy: the ``lab`` Faster R-CNN trained from scratch on the default synthetic data (CPU).

Target (issue 6): AP50 >= 0.8 on the clean validation split within 15 minutes of training on a 2-core CPU.
Evaluates every ``--eval-every`` iterations and records (training seconds, iteration, AP, AP50, AP75); evaluation
time is not counted as training time. Last line: one JSON object.

    python benchmarks/bench_time_to_accuracy.py [--iters 1500] [--threads 1] [--preset proposed]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from labkit.detection.config import TrainConfig
from labkit.detection.data import DEFAULT_SYNTHETIC, ensure_synthetic
from labkit.detection.model import DEFAULT_IMAGE_SIZE
from labkit.detection.engine import train

TARGET_AP50 = 0.8
BUDGET_SECONDS = 15 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--preset", default="proposed")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadiest on a shared CPU)")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    data = ensure_synthetic(DEFAULT_SYNTHETIC)
    data_seconds = time.perf_counter() - t0
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_tta_")) / "run"
    config = TrainConfig(data=str(data), out=str(out), model="lab", preset=args.preset, iters=args.iters,
                         batch_size=args.batch_size, eval_every=args.eval_every, checkpoint_every=args.iters,
                         log_every=50, device="cpu", extra={"benchmark": "time_to_accuracy"})
    curve = []

    def record(r: dict) -> None:
        if "eval" in r:
            point = {"iteration": r["iteration"], "train_seconds": round(r["seconds"], 1),
                     **{k: round(r["eval"][k], 4) for k in ("AP", "AP50", "AP75")}}
            curve.append(point)
            print(json.dumps(point), flush=True)

    t0 = time.perf_counter()
    run_dir = train(config, callback=record, progress=False)
    wall = time.perf_counter() - t0
    final = json.loads((run_dir / "metrics.json").read_text())
    log = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
    train_seconds = log[-1]["seconds"]
    curve.append({"iteration": config.iters, "train_seconds": round(train_seconds, 1),
                  **{k: round(final[k], 4) for k in ("AP", "AP50", "AP75")}})
    reached = next((p for p in curve if p["AP50"] >= TARGET_AP50), None)
    print(json.dumps({
        "benchmark": "time_to_accuracy",
        "machine": "CPU", "threads": args.threads, "model": "lab", "preset": args.preset,
        "iters": config.iters, "batch_size": config.batch_size, "image_size": DEFAULT_IMAGE_SIZE["lab"],
        "data_seconds": round(data_seconds, 1), "train_seconds": round(train_seconds, 1),
        "wall_seconds": round(wall, 1), "seconds_per_iter": round(train_seconds / config.iters, 3),
        "final": {k: round(final[k], 4) for k in ("AP", "AP50", "AP75")},
        "target_AP50": TARGET_AP50, "budget_seconds": BUDGET_SECONDS,
        "seconds_to_target": reached["train_seconds"] if reached else None,
        "met": bool(reached and reached["train_seconds"] <= BUDGET_SECONDS),
        "curve": curve, "run_dir": str(run_dir),
    }))


if __name__ == "__main__":
    main()
