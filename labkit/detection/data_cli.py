"""Datasets: draw the synthetic shapes dataset (`data synth`) or check a COCO/VOC dataset (`data check`)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from labkit.detection.synthetic import DEFAULT_SYNTHETIC, SynthSettings, generate_synthetic, read_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    synth = sub.add_parser("synth", help="write the synthetic shapes dataset in COCO layout")
    synth.add_argument("--out", type=Path, default=DEFAULT_SYNTHETIC, help="output folder (default: %(default)s)")
    synth.add_argument("--train", type=int, default=SynthSettings.n_train, help="training images (%(default)s)")
    synth.add_argument("--val", type=int, default=SynthSettings.n_val, help="validation images (%(default)s)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (%(default)s)")
    synth.add_argument("--image-size", type=int, default=SynthSettings.image_size, help="pixels (%(default)s)")
    synth.add_argument("--label-noise", type=float, default=0.0, metavar="B1",
                       help="Laplace label-noise scale b1 (eq. 16) as a fraction of box width/height, on the "
                            "training labels only (%(default)s)")
    synth.add_argument("--workers", type=int, default=None, help="drawing processes (default: CPUs, at most 4)")
    check = sub.add_parser("check", help="read a COCO- or VOC-layout dataset and report counts and skips")
    check.add_argument("root", type=Path, help="dataset root")
    check.add_argument("--split", nargs="+", default=["train", "val"], help="splits to read (%(default)s)")


def run(args: argparse.Namespace) -> int:
    try:
        return _synth(args) if args.data_command == "synth" else _check(args)
    except (FileNotFoundError, FileExistsError, NotADirectoryError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _synth(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    out = generate_synthetic(args.out, n_train=args.train, n_val=args.val, seed=args.seed,
                             image_size=args.image_size, label_noise=args.label_noise, workers=args.workers)
    summary = _split_counts(out)
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s: {summary}")
    return 0


def _split_counts(out: Path) -> str:
    import json

    splits = json.loads((out / "synth.json").read_text())["splits"]
    parts = []
    for name, info in splits.items():
        noise = info["label_noise"]
        text = f"{name} {info['images']} images, {info['boxes']} boxes"
        if noise["scale"] > 0:
            text += (f" (Laplace label noise b1={noise['scale']}: {noise['resized']} boxes widened to the minimum "
                     f"size, {noise['moved_into_image']} moved into the image)")
        parts.append(text)
    return "; ".join(parts)


def _check(args: argparse.Namespace) -> int:
    from labkit.detection.data import load_dataset  # torch and torchvision load only for this action

    settings = read_settings(args.root)
    if settings is not None:
        print(f"synthetic dataset: {settings}")
    for split in args.split:
        print(load_dataset(args.root, split).summary())
    return 0
