"""The head study's end-to-end check: the whole clean reference detector fine-tuned on noisy labels at the corners of
the grid, b₁ ∈ {0, 0.2} × α·σ ∈ {1/40, 1/5} (``python -m labkit experiment head-study-corners``).

The frozen-feature study refits only the box regressor; here every layer learns from the noisy labels, so the
features can adapt to the noise. Each run starts from the reference's last checkpoint and trains for the scale's
fine-tuning schedule on the synthetic data with Laplace label noise b₁ (eq. 16) drawn afresh per seed
(``noise_seed`` = the seed; the same scenes), the RPN keeping the reference's loss and the detection stage taking
the study's loss of label scale α·σ (:func:`~labkit.experiments.headstudy.design.head_loss`: (λ/α)·H_α with σ and
the prediction scale held, linear size targets). The runs go through :func:`labkit.experiments.run_experiment`
(provenance, reuse, result files); :func:`corner_effects` reads the answer paired by seed: per b₁ the difference
α·σ = 1/5 − 1/40, and the interaction (that difference at b₁ = 0.2 minus at b₁ = 0) — positive for an error
metric if the larger label scale helps less (or hurts more) under noise, negative if, as eq. 42 predicts, it
helps under noise.
"""
from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

from labkit.detection.losses import BoxLosses
from labkit.detection.runs import latest_checkpoint, resolve_device
from labkit.detection.synthetic import DEFAULT_SYNTHETIC
from labkit.experiments.analysis import paired_difference
from labkit.experiments.designs import LOWER_IS_BETTER, Arm, Experiment, Scale
from labkit.experiments.headstudy.design import HeadScale, head_loss, resolve_head_scale
from labkit.experiments.headstudy.reference import prepare_reference
from labkit.experiments.results import Results
from labkit.experiments.runner import run_experiment

__all__ = ["CORNERS", "CORNER_NOISES", "CORNER_SCALES", "FINETUNE", "corners_experiment", "finetune_scale",
           "run_finetuned", "run_corners", "corner_effects"]

CORNERS = "head-study-corners"
CORNER_NOISES = (0.0, 0.2)
CORNER_SCALES = (Fraction(1, 40), Fraction(1, 5))
#: the fine-tuning schedule per head-study scale: iterations, learning rate (the reference's is 0.02), seeds
FINETUNE = {"smoke": {"iters": 2, "lr": 0.002, "seeds": 2}, "lab": {"iters": 400, "lr": 0.002, "seeds": 5}}


def corners_experiment(rpn: Any) -> Experiment:
    """Four arms (b₁, α·σ): the RPN's loss ``rpn`` (the reference's) and the detection stage's ``head_loss``."""
    arms = tuple(Arm(f"b{b:g}_ls{str(ls).replace('/', '-')}", f"b₁={b:g}, α·σ={ls}",
                     BoxLosses(rpn=rpn, detection=head_loss(ls)), label_noise=float(b), label_scale=ls)
                 for b in CORNER_NOISES for ls in CORNER_SCALES)
    return Experiment(CORNERS, "Head study, end to end: the clean reference fine-tuned on noisy labels", arms)


def finetune_scale(scale: HeadScale, checkpoint: Path) -> Scale:
    """The runner's :class:`Scale` for fine-tuning the reference of ``scale`` from ``checkpoint``."""
    plan = FINETUNE[scale.name]
    ref = dict(scale.reference)
    return Scale(name=f"{scale.name}-finetune",
                 description=f"the {scale.name} head study's clean reference fine-tuned for {plan['iters']} "
                             f"iterations at lr {plan['lr']:g} on labels with Laplace noise b₁ drawn per seed",
                 model="lab", iters=plan["iters"], batch_size=ref["batch_size"], lr=plan["lr"], warmup_iters=0,
                 image_size=ref["image_size"], seeds=plan["seeds"], synthetic=dict(scale.synthetic),
                 checkpoint_every=plan["iters"], min_seeds=min(plan["seeds"], 5), label_noises=CORNER_NOISES,
                 label_scales=CORNER_SCALES, weights=str(checkpoint))


def run_finetuned(build: Callable[[BoxLosses], Experiment], name: str, scale: str | HeadScale = "smoke",
                  seeds: int | Sequence[int] | None = None, out: str | Path | None = None, device: str = "cpu",
                  reuse: str = "same-commit", progress: bool = True,
                  label_noises: tuple[float, ...] = CORNER_NOISES) -> Results:
    """Train (or reuse) the head study's reference at ``scale`` under ``out``/runs/reference (default out:
    runs/``name``-<scale>), then fine-tune it in every arm of ``build(the reference's box losses)`` for ``seeds``
    (default the schedule's) and write the runner's result files under ``out``. ``label_noises``: the b₁ the arms
    inject, as the scale records them."""
    sc = resolve_head_scale(scale)
    if sc.name not in FINETUNE:
        raise ValueError(f"scale must be one of {tuple(FINETUNE)}, got scale={sc.name!r}")
    out = Path(out if out is not None else Path("runs") / f"{name}-{sc.name}").resolve()
    data_root = DEFAULT_SYNTHETIC if sc.name == "lab" else out / "runs" / "data"
    config, reference, _ = prepare_reference(sc, out, data_root, resolve_device(device), reuse, progress=progress)
    fine = finetune_scale(sc, latest_checkpoint(reference["run_dir"]))
    if tuple(label_noises) != CORNER_NOISES:
        noises = ", ".join(f"{b:g}" for b in label_noises)
        fine = replace(fine, label_noises=tuple(label_noises), description=fine.description.replace(
            "Laplace noise b₁", f"Laplace noise b₁ = {noises}" if len(label_noises) == 1
            else f"Laplace noise b₁ ∈ {{{noises}}}"))
    if sc.name == "smoke":  # the runner's smoke data lives inside its out folder; keep the reference's settings
        fine = replace(fine, name="smoke")
    return run_experiment(build(config.losses), fine, seeds=seeds, out=out, device=device, progress=progress,
                          reuse=reuse)


def run_corners(scale: str | HeadScale = "smoke", seeds: int | Sequence[int] | None = None,
                out: str | Path | None = None, device: str = "cpu", reuse: str = "same-commit",
                progress: bool = True) -> Results:
    """The corners (:func:`corners_experiment`) fine-tuned from the reference (:func:`run_finetuned`)."""
    return run_finetuned(lambda losses: corners_experiment(losses.rpn), CORNERS, scale, seeds, out, device, reuse,
                         progress)


def corner_effects(results: Results, metric: str = "oracle_loc_err", confidence: float = 0.95
                   ) -> list[dict[str, Any]]:
    """Paired by seed: per b₁ the difference ``metric``(α·σ = 1/5) − ``metric``(α·σ = 1/40), and the interaction
    (the difference at the larger b₁ minus at the smaller); the three rows are one family (Bonferroni)."""
    values: dict[tuple[float, Fraction], dict[int, float]] = {}
    for r in results.rows:
        if r.get("status") == "ok" and r.get(metric) is not None:
            values.setdefault((float(r["label_noise"]), Fraction(r["label_scale"])), {})[int(r["seed"])] = float(
                r[metric])
    small, large = CORNER_SCALES
    lo, hi = CORNER_NOISES
    higher = metric not in LOWER_IS_BETTER

    def diff(b: float) -> dict[int, float]:
        a, c = values.get((b, large), {}), values.get((b, small), {})
        return {s: a[s] - c[s] for s in set(a) & set(c)}

    rows = [{"effect": f"α·σ 1/5 − 1/40 at b₁ = {b:g}", **paired_difference(diff(b), {s: 0.0 for s in diff(b)},
                                                                              metric, 3, confidence, higher)}
            for b in (lo, hi)]
    inter = {s: diff(hi)[s] - diff(lo)[s] for s in set(diff(hi)) & set(diff(lo))}
    rows.append({"effect": f"interaction: (1/5 − 1/40) at b₁ = {hi:g} minus at {lo:g}",
                 **paired_difference(inter, {s: 0.0 for s in inter}, metric, 3, confidence, higher)})
    return rows
