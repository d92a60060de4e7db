"""Refitting the box regressor on cached features: (a) the final linear layer alone, (b) the box head's last layer
and the regressor (an MLP), for many label scales α·σ and seeds at once.

The loss of each arm is the detector's own: (λ/α)·H_α (eq. 37) of the σ-scaled residual, summed over x, y, w, h
and averaged over RoIs (``labkit.detection.losses.box_regression_loss`` of the arm's ``BoxLossConfig``); each RoI
regresses the four outputs of its ground-truth class (class-specific, as ``FastRCNNPredictor`` does).

**How the step size is kept out of α's effect.** Both settings use Adam (Kingma & Ba 2015). Adam's step,
lr·m̂/(√v̂ + ε), is the same when an arm's loss is multiplied by any constant c > 0 (m̂ → c·m̂, √v̂ → c·√v̂; ε = 1e-12
is far below the gradients): the weight λ/α of eq. 37, which changes the gradient scale 64-fold across the α grid,
changes nothing about the steps, and every arm gets the same learning rate, schedule and number of steps
(tests/test_head_study.py checks the invariance). Arms are independent blocks of parameters, so fitting them in
one batch equals fitting each alone (also tested). Setting (a) is convex and is run towards its minimiser (full
batch, cosine decay to 0, features whitened — an invertible reparametrisation that leaves the model unchanged and
makes the quadratic part well conditioned), whose value does not depend on the learning rate; how close it gets is
measured by the runner, which refits a few seeds of one condition with 3× the steps (tests hold a small problem to
an L-BFGS minimiser). Setting (b) is non-convex and trained for a fixed
budget of epochs from one initialisation per seed, shared by every α.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from labkit.detection.losses import IMPLEMENTATION, PAPER, BoxLossConfig, box_regression_loss
from labkit.interpret import huber_coefficient
from labkit.losses import huber_grad

__all__ = ["ADAM_EPS", "HUBER_FORMS", "huber_slopes", "Whitening", "whitening", "arm_losses", "LinearFit",
           "fit_linear", "MLPFit", "mlp_outputs", "class_rows", "train_mlp_arms", "fit_mlp"]

ADAM_EPS = 1e-12
#: loss forms c·H_α whose derivative is c·clip(r, −α, α) (setting (a) uses it in closed form)
HUBER_FORMS = (IMPLEMENTATION, PAPER)


def _check(features: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor,
           configs: Sequence[BoxLossConfig]) -> None:
    if features.ndim != 2 or labels.shape != features.shape[:1]:
        raise ValueError(f"features must be [N, d] and labels [N], got {tuple(features.shape)} and "
                         f"{tuple(labels.shape)}")
    if targets.ndim != 3 or targets.shape[1:] != (len(features), 4):
        raise ValueError(f"targets must be [seeds, N, 4] with N = {len(features)}, got {tuple(targets.shape)}")
    if not configs or not all(isinstance(c, BoxLossConfig) for c in configs):
        raise ValueError("configs must be a non-empty sequence of BoxLossConfig, one per label scale")
    if len({c.box_coder_weights for c in configs}) != 1:
        raise ValueError("configs must share σ (the target scaling): only α and λ may differ between arms")


def huber_slopes(configs: Sequence[BoxLossConfig]) -> tuple[torch.Tensor, torch.Tensor]:
    """(c, α) per arm, each [A, 1], of losses c·H_α (eq. 37: c = λ/α; ``labkit.interpret.huber_coefficient``):
    the derivative of an arm's loss at residual r is c·clip(r, −α, α) (``labkit.losses.huber_grad``)."""
    if any(c.form not in HUBER_FORMS for c in configs):
        raise ValueError(f"configs must use a Huber form {HUBER_FORMS}, got {[c.form for c in configs]}")
    coefficient = [float(huber_coefficient(c.settings, c.form)) for c in configs]
    alpha = [float(c.settings.alpha) for c in configs]
    return torch.tensor(coefficient)[:, None], torch.tensor(alpha)[:, None]


def _cosine(lr: float, step: int, steps: int) -> float:
    return lr * 0.5 * (1 + math.cos(math.pi * step / steps))


def arm_losses(residual: torch.Tensor, configs: Sequence[BoxLossConfig]) -> torch.Tensor:
    """Per seed and arm, Σ over RoIs and coordinates of the arm's box loss of ``residual`` [n, S, A, 4]
    (σ-scaled); returns [S, A]."""
    return torch.stack([box_regression_loss(residual[:, :, a], c).sum(dim=(0, 2))
                        for a, c in enumerate(configs)], dim=-1)


@dataclass(frozen=True)
class Whitening:
    """x ↦ (x − ``mean``)·``matrix``: the features' covariance becomes the identity on its ``k`` non-degenerate
    directions (eigenvalues below 1e-6 of the largest are left out: no training RoI varies along them)."""

    mean: torch.Tensor
    matrix: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.matrix


def whitening(x: torch.Tensor) -> Whitening:
    """The :class:`Whitening` of the rows of ``x`` [N, d] (float64 eigendecomposition)."""
    x64 = x.to(torch.float64)
    mean = x64.mean(0)
    values, vectors = torch.linalg.eigh(torch.cov((x64 - mean).T).reshape(x.shape[1], x.shape[1]))
    keep = values > 1e-6 * values.max().clamp_min(1e-300)
    matrix = vectors[:, keep] / values[keep].sqrt()
    return Whitening(mean.to(x.dtype), matrix.to(x.dtype))


@dataclass(frozen=True)
class LinearFit:
    """Setting (a): per class c (1..K) and arm m, prediction (σ = 1 targets) = [W(x), 1]·``weight[c][m]`` /
    ``scale``, W the ``white`` map. ``loss``: each arm's final training loss [M]."""

    white: Whitening
    weight: torch.Tensor  # [K + 1, k + 1, M, 4] (row 0, the background, unused)
    scale: torch.Tensor  # [4]: 1/σ per coordinate
    loss: torch.Tensor

    def predict(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Targets (σ = 1) predicted by every arm, [M, R, 4]."""
        x = _with_bias(self.white(features))
        out = torch.zeros(len(x), *self.weight.shape[2:], dtype=x.dtype)
        for c in labels.unique().tolist():
            rows = labels == c
            out[rows] = (x[rows] @ self.weight[c].flatten(1)).view(-1, *self.weight.shape[2:])
        return out.transpose(0, 1) / self.scale

    def detector_weights(self, arm: int, box_coder_weights: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight [(K + 1)·4, d], bias [(K + 1)·4]) of a ``FastRCNNPredictor.bbox_pred`` whose box coder has
        ``box_coder_weights``, predicting what arm ``arm`` predicts: the whitening folded back in."""
        w = self.weight[:, :, arm]  # [K + 1, k + 1, 4]
        factor = torch.as_tensor(box_coder_weights, dtype=w.dtype) / self.scale
        linear = torch.einsum("dk,ckj->cjd", self.white.matrix, w[:, :-1]) * factor[None, :, None]
        bias = (w[:, -1] - torch.einsum("d,dk,ckj->cj", self.white.mean, self.white.matrix, w[:, :-1])) * factor
        return linear.reshape(-1, linear.shape[-1]), bias.reshape(-1)


def _with_bias(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)


def fit_linear(features: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor,
               configs: Sequence[BoxLossConfig], steps: int, lr: float, num_classes: int) -> LinearFit:
    """Setting (a): the final linear layer for every (seed, label scale) arm, M = S·A arms ordered seed-major.

    ``features`` [N, d]: the box head's output; ``labels`` [N] in 1..``num_classes``; ``targets`` [S, N, 4]: the
    (noisy) targets with σ = 1, one set per seed; ``configs``: the A arms' losses. Full-batch Adam from zero,
    ``steps`` steps of cosine-decayed ``lr`` (module docstring); the gradient of each arm's loss is taken in
    closed form (:func:`huber_slopes`; tests/test_head_study.py holds it to autograd of the same loss)."""
    _check(features, labels, targets, configs)
    if not (isinstance(steps, int) and steps >= 1 and lr > 0):
        raise ValueError(f"steps must be an int >= 1 and lr > 0, got steps={steps!r}, lr={lr!r}")
    white = whitening(features)
    x = _with_bias(white(features))
    scale = torch.as_tensor(configs[0].box_coder_weights, dtype=x.dtype)
    n_seeds, n_arms = len(targets), len(configs)
    classes = labels.unique().tolist()
    weight = torch.zeros(num_classes + 1, x.shape[1], n_seeds * n_arms, 4, dtype=x.dtype)
    blocks = {c: weight[c].clone().requires_grad_(True) for c in classes}
    xs = {c: x[labels == c] for c in classes}
    scaled = {c: (targets[:, labels == c] * scale).transpose(0, 1)[:, :, None] for c in classes}  # [n_c, S, 1, 4]
    coefficient, alpha = huber_slopes(configs)
    optimizer = torch.optim.Adam(list(blocks.values()), lr=lr, eps=ADAM_EPS)
    with torch.no_grad():  # the gradient in closed form: two matrix products and a clip per step
        for step in range(steps):
            for c in classes:
                residual = (xs[c] @ blocks[c].flatten(1)).view(-1, n_seeds, n_arms, 4) - scaled[c]
                slope = huber_grad(residual, alpha) * coefficient  # d(c·H_α)/dr, eq. 5
                blocks[c].grad = (xs[c].T @ slope.flatten(1)).view_as(blocks[c]) / len(x)
            for group in optimizer.param_groups:
                group["lr"] = _cosine(lr, step, steps)
            optimizer.step()
        losses = sum(arm_losses((xs[c] @ blocks[c].flatten(1)).view(-1, n_seeds, n_arms, 4) - scaled[c], configs)
                     for c in classes) / len(x)
    for c in classes:
        weight[c] = blocks[c].detach()
    return LinearFit(white, weight, scale, losses.detach().reshape(-1))


@dataclass(frozen=True)
class MLPFit:
    """Setting (b): per arm m, h = ReLU(x·``w1[m]`` + ``b1[m]``), prediction (σ = 1) = (h·``w2[m]`` + ``b2[m]``)
    at the RoI's class / ``scale``. ``loss``: each arm's mean training loss over its last epoch [M]."""

    w1: torch.Tensor  # [M, d, h]
    b1: torch.Tensor  # [M, h]
    w2: torch.Tensor  # [M, h, (K + 1)·4]
    b2: torch.Tensor  # [M, (K + 1)·4]
    scale: torch.Tensor
    loss: torch.Tensor

    def predict(self, features: torch.Tensor, labels: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """Targets (σ = 1) predicted by every arm, [M, R, 4]."""
        return class_rows(mlp_outputs(features, self.w1, self.b1, self.w2, self.b2, chunk), labels) / self.scale


def mlp_outputs(features: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor,
                chunk: int = 4096) -> torch.Tensor:
    """Every arm's outputs ReLU(x·w1 + b1)·w2 + b2 for the rows of ``features`` [R, d]: [M, R, O]."""
    outs = []
    for start in range(0, len(features), chunk):
        h = torch.relu(torch.einsum("nd,mdh->mnh", features[start:start + chunk], w1) + b1[:, None])
        outs.append(torch.einsum("mnh,mho->mno", h, w2) + b2[:, None])
    return torch.cat(outs, dim=1)


def class_rows(out: torch.Tensor, labels: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """The four outputs of each RoI's class from [..., n, O]: columns ``offset`` + 4·label … + 3."""
    index = (offset + labels[:, None] * 4 + torch.arange(4)).expand(*out.shape[:-1], 4)
    return out.gather(-1, index)


def _init_linear(d_in: int, d_out: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``nn.Linear``'s own initialisation (as torchvision's box head and predictor get it), drawn from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = torch.nn.Linear(d_in, d_out)
    return layer.weight.detach().T.contiguous(), layer.bias.detach()


def train_mlp_arms(features: torch.Tensor, labels: torch.Tensor, seeds: Sequence[int], n_arms: int,
                   arm_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], epochs: int, batch: int,
                   lr: float, num_classes: int, hidden: int, log_scale_start: torch.Tensor | None = None
                   ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """The batched MLP fit shared by the head study's setting (b) and the uncertainty study: for each seed and each
    of ``n_arms`` arms (M = S·A, seed-major), a ``hidden``-unit layer and a class-specific output layer of
    (K + 1)·4 box outputs, initialised afresh from the seed (the same for every arm of a seed) and trained by
    minibatch Adam (ε = :data:`ADAM_EPS`) for ``epochs`` epochs of ``batch`` RoIs (the same order for every arm of a
    seed) at a cosine-decayed ``lr``.

    ``log_scale_start`` [A]: also (K + 1)·4 log-scale outputs per arm, with weights 0 and bias the arm's start
    (``labkit.detection.uncertainty.ScalePredictor``'s initialisation). ``arm_loss(out, idx)``: the loss per seed
    and arm [S, A] (a mean over the batch) of the outputs ``out`` [S, A, B, O] of the RoIs ``idx`` [S, B].
    Returns ((w1, b1, w2, b2) with leading dimension M, each arm's mean loss over the last epoch [S, A])."""
    n_seeds, n = len(seeds), len(features)
    width = (num_classes + 1) * 4
    params: list[list[torch.Tensor]] = [[], [], [], []]
    for seed in seeds:
        for i, (d_in, d_out) in enumerate(((features.shape[1], hidden), (hidden, width))):
            w, b = _init_linear(d_in, d_out, int(seed) * 2 + i)
            params[2 * i].append(w.expand(n_arms, *w.shape))
            params[2 * i + 1].append(b.expand(n_arms, *b.shape))
    w1, b1, w2, b2 = (torch.cat(p).clone() for p in params)
    if log_scale_start is not None:
        start = torch.as_tensor(log_scale_start, dtype=b2.dtype).repeat(n_seeds)  # [M]
        w2 = torch.cat([w2, torch.zeros_like(w2)], dim=-1)
        b2 = torch.cat([b2, start[:, None].expand(-1, width)], dim=-1)
    for p in (w1, b1, w2, b2):
        p.requires_grad_(True)
    optimizer = torch.optim.Adam([w1, b1, w2, b2], lr=lr, eps=ADAM_EPS)
    orders = [torch.randperm(n, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    per_epoch = max(1, n // batch)
    total, step = epochs * per_epoch, 0
    last = torch.zeros(n_seeds, n_arms, dtype=features.dtype)
    for _ in range(epochs):
        last.zero_()
        for k in range(per_epoch):
            idx = torch.stack([o[k * batch:(k + 1) * batch] for o in orders])  # [S, B]
            h = torch.relu(torch.einsum("sbd,sadh->sabh", features[idx], w1.view(n_seeds, n_arms, *w1.shape[1:]))
                           + b1.view(n_seeds, n_arms, 1, -1))
            out = torch.einsum("sabh,saho->sabo", h, w2.view(n_seeds, n_arms, *w2.shape[1:])) \
                + b2.view(n_seeds, n_arms, 1, -1)
            losses = arm_loss(out, idx)
            for group in optimizer.param_groups:
                group["lr"] = _cosine(lr, step, total)
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            last += losses.detach() / per_epoch
            step += 1
    return (w1.detach(), b1.detach(), w2.detach(), b2.detach()), last


def fit_mlp(features: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor, configs: Sequence[BoxLossConfig],
            seeds: Sequence[int], epochs: int, batch: int, lr: float, num_classes: int, hidden: int = 256
            ) -> MLPFit:
    """Setting (b): a ``hidden``-unit layer (the box head's fc7) and the class-specific regressor, both initialised
    afresh from each seed (the same initialisation and minibatch order for every α of a seed), trained by
    minibatch Adam for ``epochs`` epochs of batches of ``batch`` RoIs at a cosine-decayed ``lr``
    (:func:`train_mlp_arms`).

    ``features`` [N, d]: the box head's fc6 output; ``targets`` [S, N, 4] with S = len(``seeds``); arms seed-major."""
    _check(features, labels, targets, configs)
    if len(seeds) != len(targets):
        raise ValueError(f"seeds must give one seed per target set, got {len(seeds)} for {len(targets)}")
    n_seeds = len(targets)
    scale = torch.as_tensor(configs[0].box_coder_weights, dtype=features.dtype)
    scaled = targets * scale

    def arm_loss(out: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        residual = torch.stack([class_rows(out[s], labels[idx[s]]) for s in range(n_seeds)]) \
            - scaled[torch.arange(n_seeds)[:, None], idx][:, None]  # [S, A, B, 4]
        return arm_losses(residual.permute(2, 0, 1, 3), configs) / idx.shape[1]

    weights, last = train_mlp_arms(features, labels, seeds, len(configs), arm_loss, epochs, batch, lr, num_classes,
                                   hidden)
    return MLPFit(*weights, scale, last.reshape(-1))
