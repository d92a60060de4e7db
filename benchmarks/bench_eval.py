"""COCO bbox evaluation of a 5,000-image synthetic detections file: labkit's fast backend vs plain pycocotools.

Both read the same ground-truth and detections JSON files (written once to a temporary folder) and compute the 12
stats; the timed call is ``labkit.detection.cocoeval.evaluate_detections(gt_path, det_path, backend=...)``, file
loading included. Repeats alternate the backends; medians. Target: ratio pycocotools / fast ≥ 3, with all 12 stats
equal to 1e-9. Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from labkit.detection.cocoeval import FAST, REFERENCE, STAT_NAMES, evaluate_detections, synthetic_eval_problem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    gt, detections = synthetic_eval_problem(args.images, seed=args.seed)
    times = {FAST: [], REFERENCE: []}
    stats = {}
    with tempfile.TemporaryDirectory() as tmp:
        gt_path, det_path = Path(tmp) / "gt.json", Path(tmp) / "detections.json"
        gt_path.write_text(json.dumps(gt))
        det_path.write_text(json.dumps(detections))
        for _ in range(args.repeats):
            for backend in (REFERENCE, FAST):
                t0 = time.perf_counter()
                stats[backend] = evaluate_detections(gt_path, det_path, backend=backend)
                times[backend].append(time.perf_counter() - t0)
                print(f"{backend:12s} {times[backend][-1]:7.2f} s", flush=True)
    t_fast, t_ref = statistics.median(times[FAST]), statistics.median(times[REFERENCE])
    max_diff = max(abs(stats[FAST][k] - stats[REFERENCE][k]) for k in STAT_NAMES)
    result = {
        "benchmark": "coco_eval_bbox",
        "images": args.images,
        "detections": len(detections),
        "ground_truth": len(gt["annotations"]),
        "pycocotools_s": round(t_ref, 3),
        "fast_s": round(t_fast, 3),
        "ratio": round(t_ref / t_fast, 2),
        "target_ratio": 3.0,
        "max_stat_diff": max_diff,
        "stats_equal_1e-9": max_diff <= 1e-9,
        "AP": round(stats[FAST]["AP"], 6),
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU used",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
