"""Train a Faster R-CNN with the paper's box losses: ``python -m labkit train --preset proposed --data DIR --out RUN``.

Small verbs, read top to bottom: :func:`resolve_device`, :func:`lr_at` (warm-up + step decay),
:func:`batch_indices` (the seeded data order), :func:`train_one_iteration`, :func:`save_checkpoint` /
:func:`latest_checkpoint`, and :func:`train` which strings them together. A run directory holds ``config.json``,
``log.jsonl`` (one JSON record per logged iteration), ``checkpoints/iter_*.pt`` (model, optimizer, iteration, RNG
states and the config) and, after evaluation, ``metrics.json``.

Exact resume: the data order and flips are pure functions of (seed, iteration) and the checkpoint restores the torch
RNG, so a run killed at any point and resumed from its last checkpoint ends with the same weights as an uninterrupted
one (on CPU, single process, same thread count). Multi-GPU: ``torchrun --nproc_per_node=N -m labkit train ...``
(DDP; gloo on CPU, NCCL on CUDA); rank 0 writes the run directory.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist

from labkit.detection.config import TrainConfig, read_config, write_json_atomic
from labkit.detection.losses import LOSS_FORMS, SIZE_TARGETS
from labkit.detection.model import MODEL_NAMES, build_model

__all__ = [
    "NonFiniteLossError",
    "DeviceUnavailableError",
    "resolve_device",
    "lr_at",
    "batch_indices",
    "train_one_iteration",
    "save_checkpoint",
    "latest_checkpoint",
    "train",
    "LiveLossCurve",
    "add_arguments",
    "run",
]

Record = dict[str, Any]


class NonFiniteLossError(FloatingPointError):
    """Training stopped because the loss became NaN or infinite."""


class DeviceUnavailableError(RuntimeError):
    """The requested device does not exist on this machine."""


# ---------------------------------------------------------------------------------------------------------------
# devices and processes
# ---------------------------------------------------------------------------------------------------------------
def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cuda"`` without CUDA is an error. Under torchrun the CUDA
    device is ``cuda:LOCAL_RANK``."""
    if isinstance(device, torch.device):
        device = device.type
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got device={device!r}")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceUnavailableError("device='cuda' was asked for, but this machine has no usable CUDA device "
                           "(torch.cuda.is_available() is False); use --device cpu or auto")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


def _world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) unless started by torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _init_distributed(device: torch.device) -> bool:
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1 or dist.is_initialized():
        return False
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


# ---------------------------------------------------------------------------------------------------------------
# schedule and data order
# ---------------------------------------------------------------------------------------------------------------
def lr_at(iteration: int, config: TrainConfig) -> float:
    """Learning rate of (0-based) ``iteration``: linear warm-up from ``lr·warmup_factor`` to ``lr`` over
    ``warmup_iters``, then multiplied by ``lr_gamma`` at each step ``round(f·iters)``, f in ``lr_steps``."""
    factor = 1.0
    if iteration < config.warmup_iters:
        t = iteration / config.warmup_iters
        factor = config.warmup_factor * (1 - t) + t
    decays = sum(iteration >= round(f * config.iters) for f in config.lr_steps)
    return config.lr * factor * config.lr_gamma**decays


def batch_indices(iteration: int, n: int, batch_size: int, seed: int) -> list[int]:
    """Dataset indices of the global batch at ``iteration``: epoch e = iteration // (n // batch_size) walks a
    permutation seeded by (seed, e); the last incomplete batch of each epoch is dropped."""
    per_epoch = n // batch_size
    epoch, k = divmod(iteration, per_epoch)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen)[k * batch_size:(k + 1) * batch_size].tolist()


def _flips(iteration: int, count: int, p: float, seed: int) -> list[bool]:
    gen = torch.Generator().manual_seed(seed * 1_000_003 + 7_919 * (iteration + 1))
    return (torch.rand(count, generator=gen) < p).tolist()


def _hflip(image: torch.Tensor, target: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
    width = image.shape[-1]
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    return image.flip(-1), {**target, "boxes": boxes}


class _Batches(torch.utils.data.Sampler):
    """This rank's share of the global batches from ``start`` to ``stop`` (for a DataLoader's ``batch_sampler``)."""

    def __init__(self, start: int, stop: int, n: int, config: TrainConfig, rank: int, world: int) -> None:
        self.start, self.stop, self.n, self.config, self.rank, self.world = start, stop, n, config, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for it in range(self.start, self.stop):
            yield batch_indices(it, self.n, self.config.batch_size, self.config.seed)[self.rank::self.world]

    def __len__(self) -> int:
        return self.stop - self.start


def _collate(batch):
    return tuple(zip(*batch))


# ---------------------------------------------------------------------------------------------------------------
# one step
# ---------------------------------------------------------------------------------------------------------------
def train_one_iteration(model, optimizer, images, targets, lr: float, scaler=None, amp: bool = False) -> Record:
    """One SGD step at learning rate ``lr``; returns the losses as floats (averaged over DDP ranks). Raises
    :class:`NonFiniteLossError` (on every rank alike) when the total loss is not finite."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    device_type = images[0].device.type
    with torch.autocast(device_type=device_type, enabled=amp):
        loss_dict = model(images, targets)
    total = sum(loss_dict.values())
    values = torch.stack([total.detach().float()] + [v.detach().float() for v in loss_dict.values()])
    if dist.is_initialized():
        dist.all_reduce(values)
        values /= dist.get_world_size()
    record = {"loss": values[0].item(), **{k: v.item() for k, v in zip(loss_dict, values[1:])}}
    if not math.isfinite(record["loss"]):
        raise NonFiniteLossError(f"non-finite loss {record}; stopping (try a lower --lr or more --warmup-iters)")
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        total.backward()
        optimizer.step()
    return record


# ---------------------------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------------------------
def _checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The highest-iteration ``checkpoints/iter_*.pt`` of ``run_dir``, or None."""
    found = sorted(_checkpoint_dir(Path(run_dir)).glob("iter_*.pt"))
    return found[-1] if found else None


def save_checkpoint(run_dir: Path, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` to ``checkpoints/iter_{iteration}.pt`` atomically (temp file + os.replace); keep the newest
    ``keep`` checkpoints."""
    folder = _checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"iter_{state['iteration']:08d}.pt"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".iter_", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for old in sorted(folder.glob("iter_*.pt"))[:-keep]:
        old.unlink()
    return path


def _rng_states() -> list[torch.Tensor]:
    states = [torch.get_rng_state()]
    if torch.cuda.is_available():
        states.append(torch.cuda.get_rng_state())
    if dist.is_initialized():  # every rank's generator, so that each rank resumes its own sampling
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, states)
        return gathered
    return [states]


def _set_rng_states(states: list[list[torch.Tensor]]) -> None:
    rank, world = _world()
    if len(states) != world:
        raise ValueError(f"the checkpoint was written by {len(states)} process(es), this run has {world}")
    mine = states[rank]
    torch.set_rng_state(mine[0])
    if len(mine) > 1 and torch.cuda.is_available():
        torch.cuda.set_rng_state(mine[1])


# ---------------------------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------------------------
def _read_log(path: Path, upto: int) -> list[Record]:
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r["iteration"] <= upto]


def _append_log(path: Path, record: Record) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def _rewrite_log(path: Path, records: list[Record]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".log.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    os.replace(tmp, path)


def _evaluate(model, dataset, device) -> dict[str, Any]:
    from labkit.detection.evaluate import evaluate

    return evaluate(model, dataset, device=device)


def train(config: TrainConfig, resume: bool = False, callback: Callable[[Record], None] | None = None,
          progress: bool = True) -> Path:
    """Train ``config.model`` on ``config.data`` and return the run directory ``config.out``.

    ``resume``: continue from the run directory's last checkpoint (its saved config must equal ``config``, device
    aside). ``callback(record)`` is called on rank 0 after every iteration with the iteration, learning rate and
    losses (e.g. a live loss curve in a notebook). Evaluates on ``config.val_split`` at the end when
    ``config.evaluate`` (writes ``metrics.json``).
    """
    from tqdm.auto import tqdm

    from labkit.detection.data import load_dataset

    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    device = resolve_device(config.device)
    started_dist = _init_distributed(device)
    rank, world = _world()
    try:
        run_dir = Path(config.out)
        start, state = 0, None
        if resume:
            checkpoint = latest_checkpoint(run_dir)
            if checkpoint is None:
                raise FileNotFoundError(f"resume: no checkpoint in {_checkpoint_dir(run_dir)}")
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            saved = TrainConfig.from_dict(state["config"]).replace(device=config.device)
            if saved != config:
                diff = sorted(k for k, v in saved.to_dict().items() if config.to_dict()[k] != v)
                raise ValueError(f"resume: the config differs from the checkpoint's in {diff}")
            start = int(state["iteration"])
        elif latest_checkpoint(run_dir) is not None:
            raise FileExistsError(f"out: {run_dir} already holds a run; pass resume=True (--resume) or a new --out")
        if world > 1 and config.batch_size % world:
            raise ValueError(f"batch_size ({config.batch_size}) must be divisible by the number of processes ({world})")

        dataset = load_dataset(config.data, split=config.train_split)
        if len(dataset) < config.batch_size:
            raise ValueError(f"batch_size ({config.batch_size}) exceeds the {len(dataset)} training images")
        torch.manual_seed(config.seed * 1_000 + rank)
        model = build_model(config.model, len(dataset.categories) + 1, config.losses,
                            image_size=config.image_size, weights=config.weights if state is None else None)
        if state is not None:
            model.load_state_dict(state["model"])
        cuda = device.type == "cuda"
        model.to(device, memory_format=torch.channels_last if cuda else torch.contiguous_format)
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if cuda else None) \
            if world > 1 else model
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
        amp = cuda and config.amp
        scaler = torch.amp.GradScaler("cuda") if amp else None
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            _set_rng_states(state["rng"])

        log_path = run_dir / "log.jsonl"
        if rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(run_dir / "config.json", config.to_dict())
            _rewrite_log(log_path, _read_log(log_path, start))

        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=_Batches(start, config.iters, len(dataset), config, rank, world),
            num_workers=config.workers, collate_fn=_collate,
            # its own generator: a loader drawing its base seed from the global RNG would shift it on resume
            generator=torch.Generator().manual_seed(config.seed))
        val_set = None
        if rank == 0 and config.val_split and (config.eval_every or config.evaluate):
            val_set = load_dataset(config.data, split=config.val_split)
        net.train()
        bar = tqdm(total=config.iters, initial=start, desc="train", disable=None if progress and rank == 0 else True)  # None: off when not a terminal
        tic, eval_seconds = time.perf_counter(), 0.0
        for it, (images, targets) in zip(range(start, config.iters), loader):
            flips = _flips(it, config.batch_size, config.hflip, config.seed)[rank::world]
            pairs = [_hflip(im, t) if f else (im, t) for im, t, f in zip(images, targets, flips)]
            images = [im.to(device, non_blocking=True) for im, _ in pairs]
            targets = [{"boxes": t["boxes"].to(device), "labels": t["labels"].to(device)} for _, t in pairs]
            record = train_one_iteration(net, optimizer, images, targets, lr_at(it, config), scaler, amp)
            record = {"iteration": it + 1, "lr": lr_at(it, config), **record,
                      "seconds": time.perf_counter() - tic - eval_seconds}  # training time, evaluations excluded
            done = it + 1
            if val_set is not None and config.eval_every and done % config.eval_every == 0 and done < config.iters:
                t_eval = time.perf_counter()
                record["eval"] = _evaluate(model, val_set, device)
                eval_seconds += time.perf_counter() - t_eval
                net.train()
            if done % config.checkpoint_every == 0 or done == config.iters:
                ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scaler": scaler.state_dict() if scaler is not None else {}, "iteration": done,
                        "config": config.to_dict(), "rng": _rng_states()}
                if rank == 0:
                    save_checkpoint(run_dir, ckpt, config.keep_checkpoints)
            if rank == 0:
                if done % config.log_every == 0 or done == config.iters or "eval" in record:
                    _append_log(log_path, record)
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2g}")
                if callback is not None:
                    callback(record)
        bar.close()
        if val_set is not None and config.evaluate:
            metrics = _evaluate(model, val_set, device)
            metrics.update(split=config.val_split, iteration=config.iters)
            write_json_atomic(run_dir / "metrics.json", metrics)
        return run_dir
    finally:
        if started_dist:
            dist.destroy_process_group()


class LiveLossCurve:
    """A ``callback`` for :func:`train` that keeps every record and redraws the loss curves every ``every``
    iterations: in a Jupyter kernel through one updating display, elsewhere only into :attr:`figure`."""

    KEYS = ("loss", "loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg")

    def __init__(self, every: int = 10, keys: tuple[str, ...] = KEYS) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an int >= 1, got every={every!r}")
        from matplotlib.figure import Figure  # no pyplot: no global figure state

        self.every, self.keys, self.records = every, tuple(keys), []
        self.figure = Figure(figsize=(6, 3.5))
        self.ax = self.figure.add_subplot()
        self._handle = None

    def __call__(self, record: Record) -> None:
        self.records.append(record)
        if record["iteration"] % self.every == 0:
            self.draw()

    def draw(self) -> None:
        ax = self.ax
        ax.clear()
        its = [r["iteration"] for r in self.records]
        for key in self.keys:
            ax.plot(its, [r.get(key, float("nan")) for r in self.records], label=key, lw=1.5 if key == "loss" else 1)
        ax.set(xlabel="iteration", ylabel="loss", yscale="log")
        ax.legend(fontsize="small", loc="upper right")
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        if self._handle is None:
            self._handle = display(self.figure, display_id=True)
        else:
            self._handle.update(self.figure)


# ---------------------------------------------------------------------------------------------------------------
# command line: python -m labkit train ...
# ---------------------------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument("--iters", type=int, default=d["iters"])
    parser.add_argument("--batch-size", type=int, default=d["batch_size"])
    parser.add_argument("--lr", type=float, default=d["lr"])
    parser.add_argument("--warmup-iters", type=int, default=d["warmup_iters"])
    parser.add_argument("--image-size", type=int, default=None, help="shorter image side in pixels")
    parser.add_argument("--seed", type=int, default=d["seed"])
    parser.add_argument("--device", default=d["device"], choices=("auto", "cpu", "cuda"))
    parser.add_argument("--workers", type=int, default=d["workers"], help="DataLoader worker processes")
    parser.add_argument("--checkpoint-every", type=int, default=d["checkpoint_every"])
    parser.add_argument("--train-split", default=d["train_split"])
    parser.add_argument("--val-split", default=d["val_split"])
    parser.add_argument("--weights", default=None, help="local state dict to start from (torch.load weights_only)")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation at the end")
    parser.add_argument("--eval-every", type=int, default=0, help="also evaluate every N iterations (0: off)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (1 is fastest on a busy shared CPU)")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (NonFiniteLossError, DeviceUnavailableError, FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, NonFiniteLossError) else 2


def _run(args: argparse.Namespace) -> int:
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
            data=str(Path(args.data).resolve()), out=str(args.out), model=args.model, preset=args.preset, loss_form=args.loss_form,
            size_target=args.size_target, iters=args.iters, batch_size=args.batch_size, lr=args.lr,
            warmup_iters=args.warmup_iters, image_size=args.image_size, seed=args.seed, device=args.device,
            workers=args.workers, checkpoint_every=args.checkpoint_every, train_split=args.train_split,
            val_split=args.val_split or None, weights=args.weights, evaluate=not args.no_eval,
            eval_every=args.eval_every)
    run_dir = train(config, resume=args.resume, progress=not args.no_progress)
    if _world()[0] == 0:
        metrics = run_dir / "metrics.json"
        if metrics.is_file() and config.evaluate:
            m = json.loads(metrics.read_text())
            print(" ".join(f"{k}={m[k]:.4f}" for k in ("AP", "AP50", "AP75")))
        print(f"run directory: {run_dir}")
    return 0
