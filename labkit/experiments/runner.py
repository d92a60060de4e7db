"""The runner: from an experiment's arms to trained, evaluated runs and the result files.

:func:`train_configs` turns every (arm, seed) into a :class:`~labkit.detection.config.TrainConfig`;
:func:`run_experiment` prepares the data, trains and evaluates each run and writes the result files
(:mod:`labkit.experiments.results`) with :func:`labkit.provenance.describe` of the whole experiment and each row's
own commit (from its run directory's ``provenance.json``). A run directory that already holds metrics for the same
config, made by the checked-out commit, is reused (``reuse="any"`` reuses other commits' runs too, and the rows say
so); an interrupted one resumes from its checkpoint, so a long lab-scale experiment can be stopped and restarted with
the same command.

Cost (2-core CPU, no GPU, measured on a machine shared with other jobs): a smoke run takes seconds. A lab run
(300 iterations of 8 images at 160 px, then evaluation on 200 images) took 1.5 minutes with the cores free and
up to 18 minutes when they were crowded; the committed lab Table 3 (its first 3 arms × 3 seeds) took the wall time recorded
in ``results/table3-lab``. Tables 4 and 5 have 2 × 3 runs; the noise study's default lab grid 5 × 4 × 3 = 60 runs
(narrow it with ``--label-noises``/``--label-scales``).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from labkit import PROJECT_ROOT
from labkit.detection.config import TrainConfig, read_config
from labkit.detection.engine import NonFiniteLossError, train
from labkit.detection.evaluate import evaluate_run
from labkit.detection.runs import latest_checkpoint, read_log, read_provenance, resolve_device
from labkit.detection.synthetic import ensure_synthetic
from labkit.experiments.analysis import summarise
from labkit.experiments.designs import (COCO_METRICS, EXPERIMENT_NAMES, METRICS, Arm, Experiment, Scale,
                                        build_experiment, resolve_scale)
from labkit.experiments.results import DIVERGED, OK, Results, write_results
from labkit.provenance import describe, git_state, same_code

__all__ = ["REUSE_CHOICES", "train_configs", "run_experiment"]

#: run_experiment's ``reuse``: finished runs made by the checked-out commit, by any commit, or none
REUSE_CHOICES = ("same-commit", "any", "never")



# ---------------------------------------------------------------------------------------------------------------
# from arms to training configs
# ---------------------------------------------------------------------------------------------------------------
def _dataset_root(scale: Scale, label_noise: float, out: Path, data: str | os.PathLike | None, seed: int) -> Path:
    """Where an arm's data lives. Synthetic data: the smoke scale keeps it inside ``out``; the quick and lab scales
    use ``data/synthetic`` of the project, and for noisy labels ``data/synthetic_noise_<b1>_seed<k>``: the same
    scenes with the label noise drawn afresh for each seed (``noise_seed`` = the run's seed), so that the seeds'
    spread includes the noise's. Otherwise ``data``."""
    if data is not None:
        if label_noise:
            raise ValueError("data: label noise is injected into generated synthetic data only; "
                             "do not pass data= for the noise study")
        return Path(data)
    if scale.synthetic is None:
        raise ValueError(f"data: scale {scale.name!r} has no bundled data; pass data= / --data (a dataset root, e.g. a "
                         "COCO 2014 folder with annotations/instances_train2014.json and train2014/)")
    base = out / "data" if scale.name == "smoke" else PROJECT_ROOT / "data"
    name = "synthetic" if not label_noise else f"synthetic_noise_{label_noise:g}_seed{seed}"
    if scale.name not in ("quick", "lab"):  # the two share the bundled dataset's settings
        name = f"{name}_{scale.name}"
    return base / name


def train_configs(experiment: Experiment, scale: str | Scale, seeds: Sequence[int], out: str | os.PathLike,
                  device: str = "auto", data: str | os.PathLike | None = None) -> list[tuple[Arm, int, TrainConfig]]:
    """(arm, seed, :class:`TrainConfig`) for every run of ``experiment`` at ``scale``: nothing is trained or
    written. Run directories are ``out/runs/<arm>/seed<k>``."""
    sc = resolve_scale(scale)
    out = Path(out)
    runs = []
    for arm in experiment.arms:
        for seed in seeds:
            root = _dataset_root(sc, arm.label_noise, out, data, int(seed))
            config = TrainConfig(
                data=str(root), out=str(out / "runs" / arm.name / f"seed{seed}"), box_losses=arm.box_losses.to_dict(),
                seed=int(seed), device=device, **sc.training(), **(arm.uncertainty or {}),
                extra={"experiment": experiment.name, "arm": arm.name, "scale": sc.name,
                       "label_noise": arm.label_noise,
                       "label_scale": None if arm.label_scale is None else str(arm.label_scale)},
            )
            runs.append((arm, int(seed), config))
    return runs


# ---------------------------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------------------------
def _reusable(config: TrainConfig, any_commit: bool, now: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The metrics of a finished run with exactly this config (so an interrupted experiment resumes), made by the
    checked-out commit (``now``) unless ``any_commit``; else None."""
    run_dir = Path(config.out)
    if not any_commit and not same_code((read_provenance(run_dir) or {}).get("created"), now):
        return None
    try:
        saved = read_config(run_dir)  # through TrainConfig: a config saved before a field existed gets its default
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError, TypeError):  # missing, unreadable, not JSON, or no longer a valid config
        return None
    if saved.replace(device=config.device) != config or not all(m in metrics for m in COCO_METRICS):
        return None
    if not all(m in metrics for m in METRICS):
        # finished before a metric existed: evaluate its last checkpoint again (seconds), rather than retrain
        if latest_checkpoint(run_dir) is None:
            return None
        metrics = evaluate_run(run_dir, device=config.device)
    return metrics


def run_experiment(
    experiment: str | Experiment,
    scale: str | Scale = "smoke",
    seeds: int | Sequence[int] | None = None,
    out: str | os.PathLike = "runs/experiment",
    device: str = "auto",
    data: str | os.PathLike | None = None,
    progress: bool = True,
    callback: Callable[..., Any] | None = None,
    reuse: str = "same-commit",
) -> Results:
    """Train and evaluate every arm of ``experiment`` for each seed at ``scale``, then write ``out/runs.csv``,
    ``out/summary.csv`` and ``out/results.json``.

    ``seeds``: a count (seeds 0 … n−1) or the seeds themselves (default: the scale's count; the lab scale needs
    ≥ 3 for an interval). ``device``: "auto", "cpu" or "cuda". ``data``: a dataset root, needed for scale "coco".
    ``callback``: passed to :func:`labkit.detection.engine.train` with the run's name added to each record as
    ``"run"`` (a live loss curve in a notebook, :class:`~labkit.experiments.display.LossCurve`); its ``close()``,
    if any, is called at the end.
    ``reuse``: ``"same-commit"`` — a run directory that already holds metrics for the same config, made by the
    checked-out commit, is read, not retrained; ``"any"`` — whatever commit made it (each row records its own
    commit and whether it was reused); ``"never"`` — retrain every run.
    """
    if reuse not in REUSE_CHOICES:
        raise ValueError(f"reuse must be one of {', '.join(REUSE_CHOICES)}, got reuse={reuse!r}")
    sc = resolve_scale(scale)
    exp = build_experiment(experiment, sc) if isinstance(experiment, str) else experiment
    if not isinstance(exp, Experiment):
        raise TypeError(f"experiment must be a name in {EXPERIMENT_NAMES} or an Experiment, got {experiment!r}")
    seed_list = _seed_list(sc.seeds if seeds is None else seeds)
    if len(seed_list) < sc.min_seeds:
        raise ValueError(f"seeds: scale {sc.name!r} reports mean ± 95 % CI and needs >= {sc.min_seeds} seeds, "
                         f"got {len(seed_list)}")
    out = Path(out).resolve()  # run configs hold absolute paths, so a rerun from another folder still matches
    dev = str(resolve_device(device))
    plan = train_configs(exp, sc, seed_list, out, device=device, data=data)
    now = git_state()
    rows = []
    for arm, seed, config in plan:
        if sc.synthetic is not None and data is None:
            ensure_synthetic(Path(config.data), **dict(sc.synthetic), label_noise=float(arm.label_noise),
                             noise_seed=config.seed if arm.label_noise else None)
        metrics = None if reuse == "never" else _reusable(config, reuse == "any", now)
        status, reused = OK, metrics is not None
        if reused and callback is not None:
            _replay(callback, Path(config.out), f"{arm.name}/seed{seed}")
        if metrics is None:
            superseded = _set_aside(config)
            if superseded is not None:
                print(f"{arm.name}/seed{seed}: {config.out} held a run of another configuration; moved to "
                      f"{superseded}", file=sys.stderr)
            # an interrupted run continues from its checkpoint
            resume = reuse != "never" and latest_checkpoint(config.out) is not None
            tagged = None if callback is None else _tagged(callback, f"{arm.name}/seed{seed}")
            try:
                run_dir = Path(train(config, resume=resume, progress=progress, callback=tagged))
                metrics = json.loads((run_dir / "metrics.json").read_text())
            except NonFiniteLossError as exc:
                status, metrics = f"{DIVERGED}: {exc}", {m: None for m in METRICS}
                print(f"{arm.name}/seed{seed}: {status}", file=sys.stderr)
        rows.append({"experiment": exp.name, "arm": arm.name, "label": arm.label, "seed": seed,
                     "label_noise": arm.label_noise,
                     "label_scale": None if arm.label_scale is None else str(arm.label_scale), "status": status,
                     **{m: None if metrics.get(m) is None else float(metrics[m]) for m in METRICS},
                     "train_seconds": _train_seconds(Path(config.out)), "run_dir": str(Path(config.out)),
                     **_run_commit(Path(config.out)), "reused": reused})
    if any(row["reused"] for row in rows):
        print(_reuse_note(rows, out))  # a re-run cell says what it did not train
    if callable(getattr(callback, "close", None)):
        callback.close()  # e.g. LossCurve: draw the finished curves
    results = Results(experiment=exp.to_dict(), scale=sc.to_dict(), provenance=describe(dev), rows=tuple(rows),
                      summary=summarise(exp, rows), out=out, configs=tuple(c.to_dict() for _, _, c in plan))
    write_results(results, out)
    return results


def _set_aside(config: TrainConfig) -> Path | None:
    """A run directory holding a run of another config (made by older code, or before a design changed) is renamed
    to ``<dir>.superseded-<k>`` — kept, not overwritten, not resumed — and the new name returned; else None."""
    run_dir = Path(config.out)
    if latest_checkpoint(run_dir) is None:
        return None
    try:
        same = read_config(run_dir).replace(device=config.device) == config
    except (OSError, ValueError, TypeError):
        same = False
    if same:
        return None
    k = 1
    while run_dir.with_name(f"{run_dir.name}.superseded-{k}").exists():
        k += 1
    target = run_dir.with_name(f"{run_dir.name}.superseded-{k}")
    run_dir.rename(target)
    return target


def _run_commit(run_dir: Path) -> dict[str, Any]:
    """The commit that made the run (and whether its tree was dirty), from its ``provenance.json``."""
    created = (read_provenance(run_dir) or {}).get("created", {})
    return {"git_commit": created.get("git_commit"), "git_dirty": created.get("git_dirty")}


def _replay(callback: Callable[[dict], Any], run_dir: Path, run: str) -> None:
    """Hand a reused run's stored records (its ``log.jsonl``, each with ``"run"``) to the callback, as its training
    did: a :class:`~labkit.experiments.display.LossCurve` draws the stored curve at once (``replay``), any other
    callback gets the records one by one."""
    records = [{**record, "run": run} for record in read_log(run_dir / "log.jsonl")]
    if callable(getattr(callback, "replay", None)):
        callback.replay(records)
    else:
        for record in records:
            callback(record)


def _reuse_note(rows: Sequence[Mapping[str, Any]], out: Path) -> str:
    """"3 of 3 runs reused from runs/notebook05/table3, trained at 1a2b3c4 …": what a re-run did not train."""
    reused = [r for r in rows if r["reused"]]
    commits = sorted({"an unrecorded commit" if not r["git_commit"] else
                      r["git_commit"][:7] + (" (with uncommitted changes)" if r["git_dirty"] else "") for r in reused})
    where = out.relative_to(PROJECT_ROOT) if out.is_relative_to(PROJECT_ROOT) else out
    return (f"{len(reused)} of {len(rows)} runs reused from {where}, trained at {', '.join(commits)}; their loss "
            f"curves come from each run's log.jsonl (reuse=\"never\" trains them again).")


def _tagged(callback: Callable[[dict], Any], run: str) -> Callable[[dict], Any]:
    """The training callback with the run's name added to each record (key ``"run"``)."""
    return lambda record: callback({**record, "run": run})


def _train_seconds(run_dir: Path) -> float | None:
    """Training wall time of a run: the ``seconds`` of the last record in its ``log.jsonl`` (None if absent;
    a resumed run counts from its resumption)."""
    try:
        lines = (run_dir / "log.jsonl").read_text().strip().splitlines()
        return round(float(json.loads(lines[-1])["seconds"]), 3)
    except (OSError, IndexError, KeyError, ValueError, TypeError):
        return None


def _seed_list(seeds: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(seeds, bool):
        raise TypeError(f"seeds must be a count or a sequence of ints, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got seeds={seeds}")
        return tuple(range(seeds))
    out = tuple(seeds)
    if not out or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in out) or len(set(out)) < len(out):
        raise ValueError(f"seeds must be distinct ints >= 0, got seeds={seeds!r}")
    return out
