"""The detection commands: ``python -m labkit train``, ``evaluate``, ``implied`` and ``data`` — a few lines each over
:func:`labkit.detection.engine.train`, :func:`labkit.detection.evaluate.evaluate_run`,
:func:`labkit.detection.implied.implied_run_settings` and the dataset functions.

Each command is a :class:`Command` (help line, argument setup, run function) that :mod:`labkit.__main__` lists.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple

import torch

from labkit.detection.backbones import BACKBONE_WEIGHTS
from labkit.detection.config import TrainConfig, read_config
from labkit.detection.data import load_dataset
from labkit.detection.engine import NonFiniteLossError, rank_and_world, train
from labkit.detection.evaluate import evaluate_run
from labkit.detection.implied import implied_run_settings
from labkit.detection.losses import LOSS_FORMS, SIZE_TARGETS
from labkit.detection.model import MODEL_NAMES
from labkit.detection.runs import DEVICES, DeviceUnavailableError
from labkit.detection.synthetic import (DEFAULT_SYNTHETIC, LABEL_NOISE_MODELS, SynthSettings, generate_synthetic,
                                        read_settings)
from labkit.detection.uncertainty import UNCERTAINTY_LOSSES, UNCERTAINTY_MODES
from labkit.interpret.exports import FRAMEWORKS, export

__all__ = ["Command", "TRAIN", "EVALUATE", "IMPLIED", "DATA"]


class Command(NamedTuple):
    """One subcommand of ``python -m labkit``."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# ---------------------------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------------------------
def _train_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig.__dataclass_fields__
    d = {name: f.default for name, f in defaults.items()}
    parser.add_argument("--out", required=True, type=Path, help="run directory to create (or resume)")
    parser.add_argument("--data", help="dataset root, COCO or VOC layout (e.g. data/synthetic)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint, with its saved config")
    parser.add_argument("--model", default=d["model"], choices=MODEL_NAMES)
    parser.add_argument("--preset", default=d["preset"], help="Table 1 column: labkit.interpret.PRESETS name")
    parser.add_argument("--loss-form", default=None, choices=LOSS_FORMS,
                        help="box-loss form for both stages (default: each preset stage's own)")
    parser.add_argument("--size-target", default=d["size_target"], choices=SIZE_TARGETS)
    parser.add_argument("--uncertainty", default=d["uncertainty"], choices=UNCERTAINTY_MODES,
                        help="none: the paper's fixed scales; learned: the detection head also predicts a scale per "
                             "box coordinate (labkit.detection.uncertainty) (default: %(default)s)")
    parser.add_argument("--uncertainty-loss", default=d["uncertainty_loss"], choices=UNCERTAINTY_LOSSES,
                        help="with --uncertainty learned: laplace_kl (eq. 18, this paper), laplace_nll, or "
                             "gaussian_kl_loss (He et al. 2019) (default: %(default)s)")
    parser.add_argument("--anneal-iters", type=int, default=d["anneal_iters"],
                        help="with --uncertainty learned: blend from the fixed loss over N iterations (0: off)")
    parser.add_argument("--var-voting", action="store_true",
                        help="with --uncertainty learned: variance voting at inference (He et al. 2019)")
    parser.add_argument("--uncertainty-rpn", action="store_true",
                        help="with --uncertainty learned: the RPN learns a scale per anchor and coordinate too")
    parser.add_argument("--iters", type=int, default=d["iters"])
    parser.add_argument("--batch-size", type=int, default=d["batch_size"])
    parser.add_argument("--lr", type=float, default=d["lr"])
    parser.add_argument("--warmup-iters", type=int, default=d["warmup_iters"])
    parser.add_argument("--image-size", type=int, default=None, help="shorter image side in pixels")
    parser.add_argument("--seed", type=int, default=d["seed"])
    parser.add_argument("--device", default=d["device"], choices=DEVICES)
    parser.add_argument("--workers", type=int, default=d["workers"], help="DataLoader worker processes")
    parser.add_argument("--checkpoint-every", type=int, default=d["checkpoint_every"])
    parser.add_argument("--train-split", default=d["train_split"])
    parser.add_argument("--val-split", default=d["val_split"])
    parser.add_argument("--weights", default=None,
                        help="local state dict or checkpoint to start from (torch.load weights_only); with "
                             "--uncertainty learned a fixed-scale run's weights are taken, the scale layers starting "
                             "at the stage's prediction scale")
    parser.add_argument("--backbone-weights", default=d["backbone_weights"], metavar="{none,imagenet,PATH}",
                        help="the backbone's start: none (random), imagenet (torchvision's ImageNet weights, "
                             "downloaded once into the torch hub cache, $TORCH_HOME/hub/checkpoints) or a local "
                             "state dict (default: %(default)s)")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation at the end")
    parser.add_argument("--eval-every", type=int, default=0, help="also evaluate every N iterations (0: off)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (1 is fastest on a busy shared CPU)")
    parser.add_argument("--no-progress", action="store_true")


def _train(args: argparse.Namespace) -> int:
    try:
        return _train_run(args)
    except (NonFiniteLossError, DeviceUnavailableError, FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, NonFiniteLossError) else 2


def _train_run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.resume:
        config = read_config(args.out).replace(device=args.device)
    else:
        if not args.data:
            raise ValueError("--data is required (a dataset root in COCO or VOC layout), unless --resume")
        config = TrainConfig(
            data=str(Path(args.data).resolve()), out=str(args.out), model=args.model, preset=args.preset,
            loss_form=args.loss_form, size_target=args.size_target, uncertainty=args.uncertainty,
            uncertainty_loss=args.uncertainty_loss, anneal_iters=args.anneal_iters, var_voting=args.var_voting,
            uncertainty_rpn=args.uncertainty_rpn,
            iters=args.iters, batch_size=args.batch_size,
            lr=args.lr, warmup_iters=args.warmup_iters, image_size=args.image_size, seed=args.seed,
            device=args.device, workers=args.workers, checkpoint_every=args.checkpoint_every,
            train_split=args.train_split, val_split=args.val_split or None, weights=args.weights,
            backbone_weights=_backbone_weights(args.backbone_weights),
            evaluate=not args.no_eval, eval_every=args.eval_every)
    run_dir = train(config, resume=args.resume, progress=not args.no_progress)
    if rank_and_world()[0] == 0:
        metrics = run_dir / "metrics.json"
        if metrics.is_file() and config.evaluate:
            m = json.loads(metrics.read_text())
            print(_summary(m))
        print(f"run directory: {run_dir}")
    return 0


def _summary(metrics: dict) -> str:
    # AP, AP50, AP75; with learned uncertainty also the NLL and calibration error of the true positives' scales
    keys = ("AP", "AP50", "AP75", "unc_nll", "unc_calibration_error")
    return " ".join(f"{k}={metrics[k]:.4f}" for k in keys if metrics.get(k) is not None)


def _backbone_weights(value: str) -> str:
    # a path is stored absolute, like --data: the run directory then says which file it started from
    return value if value in BACKBONE_WEIGHTS else str(Path(value).resolve())


# ---------------------------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------------------------
def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, type=Path, help="run directory written by `train`")
    parser.add_argument("--split", default=None, help="dataset split (default: the run's val_split)")
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--var-voting", action=argparse.BooleanOptionalAction, default=None,
                        help="learned-uncertainty runs: variance voting on or off (default: as the run was trained)")


def _evaluate(args: argparse.Namespace) -> int:
    try:
        metrics = evaluate_run(args.run, split=args.split, device=args.device, batch_size=args.batch_size,
                               progress=True, var_voting=args.var_voting)
    except (DeviceUnavailableError, FileNotFoundError, ValueError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    print(_summary(metrics))
    print(f"wrote {metrics['file']}")
    return 0



# ---------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------
def _data_arguments(parser: argparse.ArgumentParser) -> None:
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
    synth.add_argument("--label-noise-model", default=SynthSettings.label_noise_model, choices=LABEL_NOISE_MODELS,
                       help="homoscedastic: every box gets B1; heteroscedastic: faint (low-contrast) objects get "
                            "more, 1.6·B1 down to 0.4·B1, each box's scale recorded in its annotation "
                            "(%(default)s)")
    synth.add_argument("--workers", type=int, default=None, help="drawing processes (default: CPUs, at most 4)")
    check = sub.add_parser("check", help="read a COCO- or VOC-layout dataset and report counts and skips")
    check.add_argument("root", type=Path, help="dataset root")
    check.add_argument("--split", nargs="+", default=["train", "val"], help="splits to read (%(default)s)")


def _data(args: argparse.Namespace) -> int:
    try:
        return _synth(args) if args.data_command == "synth" else _check(args)
    except (FileNotFoundError, FileExistsError, NotADirectoryError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _synth(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    out = generate_synthetic(args.out, n_train=args.train, n_val=args.val, seed=args.seed,
                             image_size=args.image_size, label_noise=args.label_noise, workers=args.workers,
                             label_noise_model=args.label_noise_model)
    summary = _split_counts(out)
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s: {summary}")
    return 0


def _split_counts(out: Path) -> str:
    splits = json.loads((out / "synth.json").read_text())["splits"]
    parts = []
    for name, info in splits.items():
        noise = info["label_noise"]
        text = f"{name} {info['images']} images, {info['boxes']} boxes"
        if noise["scale"] > 0:
            text += (f" ({noise.get('model', 'homoscedastic')} Laplace label noise b1={noise['scale']}: "
                     f"{noise['resized']} boxes widened to the minimum size, {noise['moved_into_image']} moved into "
                     "the image)")
        parts.append(text)
    return "; ".join(parts)


def _check(args: argparse.Namespace) -> int:
    settings = read_settings(args.root)
    if settings is not None:
        print(f"synthetic dataset: {settings}")
    for split in args.split:
        print(load_dataset(args.root, split).summary())
    return 0

# ---------------------------------------------------------------------------------------------------------------
# implied: a learned-uncertainty run read back as fixed Huber settings
# ---------------------------------------------------------------------------------------------------------------
def _implied_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, help="a run trained with --uncertainty learned (Laplace KL or NLL)")
    p.add_argument("--split", default=None, help="split whose true positives' scales are read (default: val)")
    p.add_argument("--framework", choices=FRAMEWORKS, nargs="+", default=["torchvision"],
                   help="export the implied settings for these frameworks (%(default)s)")
    p.add_argument("--device", choices=DEVICES, default="auto")


def _implied(args: argparse.Namespace) -> int:
    try:
        implied = implied_run_settings(args.run_dir, args.split, args.device)
    except (FileNotFoundError, ValueError, DeviceUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stages = [("detection", implied.detection, implied.scales)]
    if implied.rpn is not None:
        stages.insert(0, ("rpn", implied.rpn, implied.rpn_scales))
    for name, d, scales in stages:
        print(f"{name} stage: learned scales (x, y, w, h; σ-scaled target units), median over {scales.count} "
              f"{scales.population}: {', '.join(f'{v:.4g}' for v in scales.median)}")
        print(f"implied {name} stage: {d.settings.describe()} (label/prediction ratio {float(d.ratio):.4g}; "
              f"prediction scales {', '.join(f'{float(v):.4g}' for v in d.prediction_scales)} anchor sizes)")
    for framework in args.framework:
        print(f"\n# {framework}\n{export(implied.settings, framework, form=implied.form).snippet}")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# the commands, as labkit.__main__ lists them
# ---------------------------------------------------------------------------------------------------------------
TRAIN = Command("Train a Faster R-CNN with the paper's per-stage box losses into a run directory",
                _train_arguments, _train)
EVALUATE = Command("COCO evaluation (AP, AP50, AP75, localization error) of a run's last checkpoint",
                   _evaluate_arguments, _evaluate)
IMPLIED = Command("The fixed Huber settings (λ, α, σ) a learned-uncertainty run's scales imply, exported",
                  _implied_arguments, _implied)
DATA = Command("Datasets: draw the synthetic shapes dataset (`data synth`) or check a COCO/VOC dataset (`data check`)",
               _data_arguments, _data)
