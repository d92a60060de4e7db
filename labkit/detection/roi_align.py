"""A faster, exact CPU RoI align: torchvision's ``roi_align`` as two small matrix products per image.

Why it is exact and fast: every sampling point of RoI align (Mask R-CNN's bilinear pooling, as torchvision
implements it) has a bilinear weight that is a product of a row weight and a column weight, and a point is dropped
when its row *or* its column lies outside the map. So the pooled value of one RoI factorises:

    out[c, ph, pw] = Σ_y Σ_x  A_y[ph, y] · F[c, y, x] · A_x[pw, x]

where ``A_y`` (pooled_h × H) holds, for each output row, the averaged bilinear weights of its ``grid_h`` sample rows,
and ``A_x`` (pooled_w × W) the same for columns. Forward is one matrix product per image (all of its RoIs' ``A_y``
against the feature map) and one batched product over RoIs (against ``A_x``); the backward is the same two products
transposed: dense BLAS on all cores instead of torchvision's single-threaded per-element scatter on CPU.

The sample coordinates, the out-of-map test, the clamping at the border, ``aligned`` and the adaptive
``sampling_ratio <= 0`` case (``ceil(roi_h / pooled_h)`` samples per bin, per RoI) follow torchvision's CPU kernel
step by step in the input's dtype, so the integer decisions (which cells, how many samples) are the same; only the
order of the floating-point sums differs. Adaptive grids differ per RoI: each RoI's grid is padded to the largest one
and the padding masked out, which costs a few extra entries in the small ``A`` matrices only.

The products touch the whole feature map for every RoI, so the cost grows with H·W: on large maps (FPN levels of an
800 px image) torchvision's kernel is cheaper, and :func:`roi_align` falls back to it (as it does on CUDA and for
dtypes other than float32/float64). Public names: :func:`roi_align` (dispatching), :func:`separable_roi_align`
(always the fast path), :func:`prefer_separable` (the heuristic) and :class:`FastMultiScaleRoIAlign`, a drop-in for
``torchvision.ops.MultiScaleRoIAlign``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import roi_align as tv_roi_align
from torchvision.ops.poolers import _setup_scales

__all__ = ["roi_align", "separable_roi_align", "prefer_separable", "FastMultiScaleRoIAlign", "SEPARABLE_DTYPES"]

#: dtypes the fast path handles (dense BLAS products); others go to torchvision
SEPARABLE_DTYPES = (torch.float32, torch.float64)
#: the fast path's multiply-adds may exceed torchvision's (scalar, single-threaded) ones by this factor and still win.
#: Measured forward + backward on a 2-core CPU (benchmarks/bench_roi_align.py): a 16² map with 2 × 2 samples is 3.3×
#: the multiply-adds and 4.8× faster; a 32² map with 1 sample is 45× and breaks even. 20 keeps a margin.
_BLAS_ADVANTAGE = 20.0


def _output_size(output_size: int | Sequence[int]) -> tuple[int, int]:
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise ValueError(f"output_size must be a positive int or a pair of positive ints, got {output_size!r}")
    return size


def _as_rois(boxes: Tensor | Sequence[Tensor], input: Tensor) -> Tensor:
    """``Tensor[K, 5]`` (batch index, x1, y1, x2, y2), from either of torchvision's box formats."""
    if isinstance(boxes, (list, tuple)):
        for i, b in enumerate(boxes):
            if not isinstance(b, Tensor) or b.dim() != 2 or b.shape[1] != 4:
                got = tuple(b.shape) if isinstance(b, Tensor) else type(b).__name__
                raise ValueError(f"boxes[{i}] must be a Tensor[L, 4] (x1, y1, x2, y2), got {got}")
        if not boxes:
            return input.new_zeros((0, 5))
        ids = [torch.full_like(b[:, :1], i) for i, b in enumerate(boxes)]
        return torch.cat([torch.cat(ids), torch.cat(list(boxes))], dim=1)
    if not isinstance(boxes, Tensor) or boxes.dim() != 2 or boxes.shape[1] != 5:
        got = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        raise ValueError(f"boxes must be a Tensor[K, 5] (batch index, x1, y1, x2, y2) or a list of Tensor[L, 4], got {got}")
    return boxes


def _check(input: Tensor, rois: Tensor) -> None:
    if not isinstance(input, Tensor) or input.dim() != 4:
        got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ValueError(f"input must be a Tensor[N, C, H, W], got {got}")
    if rois.dtype != input.dtype:
        raise TypeError(f"boxes must have the input's dtype {input.dtype}, got {rois.dtype}")
    if rois.device != input.device:
        raise ValueError(f"boxes must be on the input's device {input.device}, got {rois.device}")


def _axis_weights(start: Tensor, length: Tensor, grid: Tensor, pooled: int, size: int) -> Tensor:
    """``A[k, p, i]``: the weight of map row (or column) ``i`` in output row ``p`` of RoI ``k``, averaged over its
    ``grid[k]`` samples. Coordinates are computed in the input dtype in the order of torchvision's CPU kernel."""
    dtype = start.dtype
    n_rois = start.shape[0]
    max_grid = max(int(grid.max()), 0) if n_rois else 0
    weights = start.new_zeros((n_rois, pooled, size))
    if max_grid == 0:
        return weights
    bin_size = (length / pooled)[:, None, None]
    p = torch.arange(pooled, device=start.device, dtype=dtype)[None, :, None]
    offsets = (torch.arange(max_grid, device=start.device, dtype=dtype) + 0.5)[None, None, :]
    per_grid = grid.clamp(min=1).to(dtype)[:, None, None]
    # start + p·bin + (i + ½)·bin / grid, associated as in the C++ expression
    coord = (start[:, None, None] + p * bin_size) + (offsets * bin_size) / per_grid
    in_grid = torch.arange(max_grid, device=start.device)[None, None, :] < grid[:, None, None]
    keep = in_grid & (coord >= -1.0) & (coord <= size)  # a NaN coordinate fails both tests, as in the kernel
    coord = torch.where(keep, coord.clamp(min=0), torch.zeros((), dtype=dtype, device=start.device))
    low = coord.long()  # truncation == floor on coord >= 0
    at_edge = low >= size - 1
    low = torch.where(at_edge, size - 1, low)
    high = torch.where(at_edge, size - 1, low + 1)
    frac = torch.where(at_edge, torch.zeros((), dtype=dtype, device=start.device), coord - low.to(dtype))
    zero = torch.zeros((), dtype=dtype, device=start.device)
    w_low = torch.where(keep, (1.0 - frac) / per_grid, zero)
    w_high = torch.where(keep, frac / per_grid, zero)
    weights.scatter_add_(2, low.view(n_rois, pooled, -1), w_low.view(n_rois, pooled, -1))
    weights.scatter_add_(2, high.view(n_rois, pooled, -1), w_high.view(n_rois, pooled, -1))
    return weights


def _roi_geometry(rois: Tensor, spatial_scale: float, pooled: tuple[int, int], sampling_ratio: int, aligned: bool):
    """Per-RoI start, extent and samples per bin along y and x, as torchvision's CPU kernel computes them."""
    dtype = rois.dtype
    scale = torch.tensor(spatial_scale, dtype=dtype, device=rois.device)  # the kernel casts the scale to T
    offset = torch.tensor(0.5 if aligned else 0.0, dtype=dtype, device=rois.device)
    x1, y1, x2, y2 = (rois[:, i] * scale - offset for i in range(1, 5))
    width, height = x2 - x1, y2 - y1
    if not aligned:  # malformed RoIs are forced to 1 × 1
        width, height = width.clamp(min=1.0), height.clamp(min=1.0)
    if sampling_ratio > 0:
        grid_h = torch.full_like(rois[:, 0], sampling_ratio, dtype=torch.long)
        grid_w = grid_h
    else:
        grid_h = torch.ceil(height / pooled[0]).long()
        grid_w = torch.ceil(width / pooled[1]).long()
    return (y1, height, grid_h), (x1, width, grid_w)


class _SeparableRoIAlign(torch.autograd.Function):
    """out = A_y · F_b · A_xᵀ per RoI; grad F_b = Σ_k A_yᵀ · G_k · A_x (gradients for the boxes: none, as in
    torchvision)."""

    @staticmethod
    def forward(ctx, input: Tensor, batch: Tensor, a_y: Tensor, a_x: Tensor) -> Tensor:
        n, c, h, w = input.shape
        k, ph, pw = a_y.shape[0], a_y.shape[1], a_x.shape[1]
        out = input.new_empty((k, c, ph, pw))
        groups = _groups(batch, n)
        # one image at a time: the (RoIs × pooled_h × C × W) intermediate stays a few MB and is reused
        for b, idx in groups:
            fmap = input[b].permute(1, 0, 2).reshape(h, c * w)  # (H, C·W)
            rows = (a_y[idx].reshape(-1, h) @ fmap).view(-1, ph * c, w)  # (K_b, PH·C, W)
            pooled = torch.bmm(rows, a_x[idx].transpose(1, 2))  # (K_b, PH·C, PW)
            out[idx] = pooled.view(-1, ph, c, pw).permute(0, 2, 1, 3)
        ctx.save_for_backward(a_y, a_x)
        ctx.groups, ctx.shape = groups, input.shape
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        a_y, a_x = ctx.saved_tensors
        n, c, h, w = ctx.shape
        ph, pw = a_y.shape[1], a_x.shape[1]
        grad_input = grad_out.new_zeros((n, h, c, w))
        for b, idx in ctx.groups:
            grad_pooled = grad_out[idx].permute(0, 2, 1, 3).reshape(-1, ph * c, pw)  # (K_b, PH·C, PW)
            grad_rows = torch.bmm(grad_pooled, a_x[idx]).view(-1, c * w)  # (K_b·PH, C·W)
            grad_input[b] = (a_y[idx].reshape(-1, h).t() @ grad_rows).view(h, c, w)
        return grad_input.permute(0, 2, 1, 3), None, None, None


def _groups(batch: Tensor, n_images: int) -> list[tuple[int, Tensor]]:
    """(image, RoI indices) for each image that has RoIs; a contiguous slice when the RoIs are sorted by image."""
    if batch.numel() and bool((batch[1:] >= batch[:-1]).all()):
        counts = torch.bincount(batch, minlength=n_images).tolist()
        starts = [0]
        for count in counts:
            starts.append(starts[-1] + count)
        return [(b, slice(starts[b], starts[b + 1])) for b in range(n_images) if counts[b]]
    return [(b, idx) for b in range(n_images) if (idx := torch.where(batch == b)[0]).numel()]


def separable_roi_align(
    input: Tensor,
    boxes: Tensor | Sequence[Tensor],
    output_size: int | Sequence[int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """``torchvision.ops.roi_align`` computed by the separable fast path (any device, float32/float64).

    Same arguments and result: ``input`` Tensor[N, C, H, W]; ``boxes`` Tensor[K, 5] (batch index, x1, y1, x2, y2)
    or a list of Tensor[L, 4], one per image; ``output_size`` (pooled_h, pooled_w) or an int; ``spatial_scale``
    maps box coordinates to the map; ``sampling_ratio`` samples per bin along each axis (<= 0: ceil(roi / output)
    per RoI); ``aligned`` shifts boxes by half a cell. Returns Tensor[K, C, pooled_h, pooled_w].
    """
    pooled = _output_size(output_size)
    rois = _as_rois(boxes, input)
    _check(input, rois)
    if input.dtype not in SEPARABLE_DTYPES:
        raise TypeError(f"input must be one of {SEPARABLE_DTYPES} for the separable path, got {input.dtype}")
    n, c, h, w = input.shape
    rois = rois.detach()
    batch = rois[:, 0].long()
    if batch.numel() and (int(batch.min()) < 0 or int(batch.max()) >= n):
        raise ValueError(f"boxes' batch indices must lie in [0, {n - 1}], got [{int(batch.min())}, {int(batch.max())}]")
    (y0, height, grid_h), (x0, width, grid_w) = _roi_geometry(rois, float(spatial_scale), pooled, sampling_ratio, aligned)
    a_y = _axis_weights(y0, height, grid_h, pooled[0], h)
    a_x = _axis_weights(x0, width, grid_w, pooled[1], w)
    return _SeparableRoIAlign.apply(input.contiguous(), batch, a_y, a_x)


def prefer_separable(
    input: Tensor,
    rois: Tensor,
    output_size: tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> bool:
    """True where the separable path is expected to beat torchvision's kernel: CPU, float32/float64, and a feature
    map small enough that multiplying through all of it costs less than torchvision's per-sample work.

    Multiply-adds per RoI and channel: torchvision 4 corners × samples per bin × bins; ours pooled_h·(H·W + W·pooled_w),
    at BLAS speed (``_BLAS_ADVANTAGE``). With ``sampling_ratio <= 0`` the samples are the RoIs' mean adaptive grid."""
    if input.device.type != "cpu" or input.dtype not in SEPARABLE_DTYPES or rois.shape[0] == 0:
        return False
    h, w = input.shape[-2:]
    ph, pw = output_size
    if sampling_ratio > 0:
        samples = float(sampling_ratio * sampling_ratio)
    else:
        (_, _, grid_h), (_, _, grid_w) = _roi_geometry(rois.detach(), spatial_scale, output_size, sampling_ratio, aligned)
        samples = float((grid_h.clamp(min=0) * grid_w.clamp(min=0)).double().mean())
    ours = ph * (h * w + w * pw)
    stock = 4 * ph * pw * max(samples, 1.0)
    return ours < _BLAS_ADVANTAGE * stock


def roi_align(
    input: Tensor,
    boxes: Tensor | Sequence[Tensor],
    output_size: int | Sequence[int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """Drop-in for ``torchvision.ops.roi_align`` (same arguments, same result): the separable fast path where
    :func:`prefer_separable` says it is faster (CPU, small maps), torchvision's kernel elsewhere."""
    pooled = _output_size(output_size)
    rois = _as_rois(boxes, input)
    _check(input, rois)
    if prefer_separable(input, rois, pooled, spatial_scale, sampling_ratio, aligned):
        return separable_roi_align(input, rois, pooled, spatial_scale, sampling_ratio, aligned)
    return tv_roi_align(input, rois, pooled, spatial_scale, sampling_ratio, aligned)


class FastMultiScaleRoIAlign(MultiScaleRoIAlign):
    """``torchvision.ops.MultiScaleRoIAlign`` with :func:`roi_align` per level: same constructor, forward, scale
    inference and FPN level mapping (torchvision's own), so a model built with either gives the same output.

    Pass it where torchvision takes a RoI pooler: ``FasterRCNN(..., box_roi_pool=FastMultiScaleRoIAlign(["0"], 7, 2))``.
    """

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        features = [v for k, v in x.items() if k in self.featmap_names]
        if not features:
            raise ValueError(f"x must hold at least one of the feature maps {self.featmap_names}, got {list(x)}")
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(features, image_shapes, self.canonical_scale, self.canonical_level)
        rois = _as_rois(boxes, features[0])
        if len(features) == 1:
            return roi_align(features[0], rois, self.output_size, self.scales[0], self.sampling_ratio)
        levels = self.map_levels(boxes)
        result = features[0].new_zeros((rois.shape[0], features[0].shape[1]) + self.output_size)
        for level, (feature, scale) in enumerate(zip(features, self.scales)):
            idx = torch.where(levels == level)[0]
            pooled = roi_align(feature, rois[idx], self.output_size, scale, self.sampling_ratio)
            result[idx] = pooled.to(result.dtype)
        return result
