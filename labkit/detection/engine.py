"""Train a Faster R-CNN with the paper's box losses: the training loop, from small verbs read top to bottom.

:func:`lr_at` (warm-up + step decay), :func:`batch_indices` (the seeded data order), :func:`flips` (the seeded
horizontal flips), :func:`train_one_iteration`, and :func:`train`, which strings them together over a run directory
(:mod:`labkit.detection.runs`). The command line is ``python -m labkit train`` (:mod:`labkit.detection.cli`).

Exact resume: the data order and flips are pure functions of (seed, iteration) and the checkpoint restores the torch
RNG, so a run killed at any point and resumed from its last checkpoint ends with the same weights as an uninterrupted
one (on CPU, single process, same thread count). Multi-GPU: ``torchrun --nproc_per_node=N -m labkit train ...``
(DDP; gloo on CPU, NCCL on CUDA); rank 0 writes the run directory.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from labkit._io import write_json
from labkit.detection.config import TrainConfig
from labkit.detection.data import hflip, load_dataset, make_loader
from labkit.detection.evaluate import evaluate
from labkit.detection.model import build_model
from labkit.detection.runs import (append_log, checkpoint_dir, latest_checkpoint, read_log, record_provenance,
                                   resolve_device, rewrite_log, save_checkpoint)

__all__ = [
    "NonFiniteLossError",
    "lr_at",
    "batch_indices",
    "flips",
    "train_one_iteration",
    "train",
    "rank_and_world",
]

Record = dict[str, Any]


class NonFiniteLossError(FloatingPointError):
    """Training stopped because the loss became NaN or infinite."""


def rank_and_world() -> tuple[int, int]:
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


def flips(iteration: int, count: int, p: float, seed: int) -> list[bool]:
    """Which of the ``count`` images of ``iteration``'s global batch are mirrored (each with probability ``p``)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + 7_919 * (iteration + 1))
    return (torch.rand(count, generator=gen) < p).tolist()


class _Batches(torch.utils.data.Sampler):
    """This rank's share of the global batches from ``start`` to ``stop`` (for a DataLoader's ``batch_sampler``)."""

    def __init__(self, start: int, stop: int, n: int, config: TrainConfig, rank: int, world: int) -> None:
        self.start, self.stop, self.n, self.config, self.rank, self.world = start, stop, n, config, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for it in range(self.start, self.stop):
            yield batch_indices(it, self.n, self.config.batch_size, self.config.seed)[self.rank::self.world]

    def __len__(self) -> int:
        return self.stop - self.start


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
# RNG states (in every checkpoint, for exact resume)
# ---------------------------------------------------------------------------------------------------------------
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
    rank, world = rank_and_world()
    if len(states) != world:
        raise ValueError(f"the checkpoint was written by {len(states)} process(es), this run has {world}")
    mine = states[rank]
    torch.set_rng_state(mine[0])
    if len(mine) > 1 and torch.cuda.is_available():
        torch.cuda.set_rng_state(mine[1])


# ---------------------------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------------------------
def train(config: TrainConfig, resume: bool = False, callback: Callable[[Record], None] | None = None,
          progress: bool = True) -> Path:
    """Train ``config.model`` on ``config.data`` and return the run directory ``config.out``.

    ``resume``: continue from the run directory's last checkpoint (its saved config must equal ``config``, device
    aside). ``callback(record)`` is called on rank 0 after every iteration with the iteration, learning rate and
    losses (e.g. a live loss curve in a notebook). Evaluates on ``config.val_split`` at the end when
    ``config.evaluate`` (writes ``metrics.json``).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    device = resolve_device(config.device)
    started_dist = _init_distributed(device)
    rank, world = rank_and_world()
    try:
        run_dir = Path(config.out)
        start, state = 0, None
        if resume:
            checkpoint = latest_checkpoint(run_dir)
            if checkpoint is None:
                raise FileNotFoundError(f"resume: no checkpoint in {checkpoint_dir(run_dir)}")
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
        # on resume the checkpoint replaces every parameter: no backbone file is read, its layout is kept
        model = build_model(config.model, len(dataset.categories) + 1, config.losses, image_size=config.image_size,
                            weights=config.weights if state is None else state["model"],
                            backbone_weights=config.backbone_weights, uncertainty=config.uncertainty_config)
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
            write_json(run_dir / "config.json", config.to_dict())
            record_provenance(run_dir, str(device), resumed=state is not None)
            rewrite_log(log_path, read_log(log_path, start))

        # the loader has its own generator: one drawing its base seed from the global RNG would shift it on resume
        loader = make_loader(dataset, batch_sampler=_Batches(start, config.iters, len(dataset), config, rank, world),
                             workers=config.workers, device=device, seed=config.seed)
        val_set = None
        if rank == 0 and config.val_split and (config.eval_every or config.evaluate):
            val_set = load_dataset(config.data, split=config.val_split)
        net.train()
        bar = tqdm(total=config.iters, initial=start, desc="train", disable=None if progress and rank == 0 else True)  # None: off when not a terminal
        tic, eval_seconds = time.perf_counter(), 0.0
        for it, (images, targets) in zip(range(start, config.iters), loader):
            mirror = flips(it, config.batch_size, config.hflip, config.seed)[rank::world]
            pairs = [hflip(im, t) if f else (im, t) for im, t, f in zip(images, targets, mirror)]
            images = [im.to(device, non_blocking=True) for im, _ in pairs]
            targets = [{"boxes": t["boxes"].to(device), "labels": t["labels"].to(device)} for _, t in pairs]
            record = train_one_iteration(net, optimizer, images, targets, lr_at(it, config), scaler, amp)
            record = {"iteration": it + 1, "lr": lr_at(it, config), **record,
                      "seconds": time.perf_counter() - tic - eval_seconds}  # training time, evaluations excluded
            done = it + 1
            if val_set is not None and config.eval_every and done % config.eval_every == 0 and done < config.iters:
                t_eval = time.perf_counter()
                record["eval"] = evaluate(model, val_set, device=device)
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
                    append_log(log_path, record)
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2g}")
                if callback is not None:
                    callback(record)
        bar.close()
        if val_set is not None and config.evaluate:
            metrics = evaluate(model, val_set, device=device)
            metrics.update(split=config.val_split, iteration=config.iters)
            write_json(run_dir / "metrics.json", metrics)
        return run_dir
    finally:
        if started_dist:
            dist.destroy_process_group()
