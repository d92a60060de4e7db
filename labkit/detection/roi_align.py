"""A faster, exact CPU RoI align: torchvision's ``roi_align`` as two small matrix products per image.

Why it is exact and fast: every sampling point of RoI align (Mask R-CNN's bilinear pooling, as torchvision
implements it) has a bilinear weight that is a product of a row weight and a column weight, and a point is dropped
when its row *or* its column lies outside the map. So the pooled value of one RoI factorises:

    out[c, ph, pw] = Σ_y Σ_x  A_y[ph, y] · F[c, y, x] · A_x[pw, x]

where ``A_y`` (pooled_h × H) holds, for each output row, the averaged bilinear weights of its ``grid_h`` sample rows,
and ``A_x`` (pooled_w × W) the same for columns. Forward is one matrix product per chunk of an image's RoIs (all of
their ``A_y`` against the feature map) and one batched product over those RoIs (against ``A_x``); the backward is the
same two products transposed: dense BLAS on all cores instead of torchvision's single-threaded per-element scatter on
CPU. Chunks keep the intermediate small (cache-resident, and bounded on large maps); RoIs not sorted by image are
sorted first and the result put back in their order.

The sample coordinates, the out-of-map test, the clamping at the border, ``aligned`` and the adaptive
``sampling_ratio <= 0`` case (``ceil(roi_h / pooled_h)`` samples per bin, per RoI) follow torchvision's CPU kernel
step by step in the input's dtype, so the integer decisions (which cells, how many samples) are the same; only the
order of the floating-point sums differs. Adaptive grids differ per RoI: each RoI's grid is padded to the largest one
and the padding masked out, which costs a few extra entries in the small ``A`` matrices only.

The products touch the whole feature map for every RoI, so the cost grows with H·W: on large maps (FPN levels of an
800 px image) torchvision's kernel is cheaper, and :func:`roi_align` falls back to it (as it does on CUDA and for
dtypes other than float32/float64). Public names: :func:`roi_align` (dispatching; ``path="separable"`` forces
the fast path), :func:`prefer_separable` (the heuristic) and :class:`FastMultiScaleRoIAlign`, a drop-in for
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

__all__ = ["roi_align", "prefer_separable", "FastMultiScaleRoIAlign", "SEPARABLE_DTYPES", "ROI_ALIGN_PATHS"]

#: dtypes the fast path handles (dense BLAS products); others go to torchvision
SEPARABLE_DTYPES = (torch.float32, torch.float64)
#: the fast path's multiply-adds may exceed torchvision's (scalar, single-threaded) ones by this factor and still win.
#: Measured forward + backward on a shared 2-core CPU (benchmarks/bench_roi_align.py and 512 RoIs of the same kind on
#: larger maps, OMP_WAIT_POLICY=PASSIVE): 16² with 2 × 2 samples is 3.3× the multiply-adds and ≈ 7× faster; 32² with
#: 1 sample 45× and 1.5× faster; 64² with 2 × 2 samples 41× and 1.1× faster; 48² with 1 sample (94×) about even;
#: 96² with 2 × 2 samples (88×) 0.7×. The break-even lies between 55× (2 × 2 samples) and 100× (1 sample).
_BLAS_ADVANTAGE = 48.0


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


#: RoIs per chunk of the fast path are chosen so that the chunk's intermediate (RoIs × pooled_h × C × W elements)
#: stays about this size: it is reused for every chunk and stays in the L2/L3 cache between the two products, and
#: memory stays bounded on large maps. At least ``_MIN_CHUNK`` RoIs per chunk all the same: on large maps a chunk of
#: a few RoIs would make each GEMM re-read the whole map for a handful of rows.
_CHUNK_ELEMENTS = 1 << 19
_MIN_CHUNK = 32


def _chunks(batch: Tensor, n_images: int, per_chunk: int) -> list[tuple[int, int, int]]:
    """(image, start, stop) runs of at most ``per_chunk`` RoIs of one image each; ``batch`` must be sorted."""
    counts = torch.bincount(batch, minlength=n_images).tolist() if batch.numel() else [0] * n_images
    chunks, start = [], 0
    for b, count in enumerate(counts):
        for s in range(start, start + count, per_chunk):
            chunks.append((b, s, min(s + per_chunk, start + count)))
        start += count
    return chunks


class _SeparableRoIAlign(torch.autograd.Function):
    """out = A_y · F_b · A_xᵀ per RoI; grad F_b = Σ_k A_yᵀ · G_k · A_x (gradients for the boxes: none, as in
    torchvision). The RoIs must be sorted by image (:func:`roi_align` sorts them).

    Forward, per chunk of RoIs of image b: ``rows = A_y (m·PH × H) @ F_b (H × C·W)``, one GEMM for the chunk, in
    (RoI, ph, c, x) order; then ``A_x[k] (PW × W) @ rows[k]ᵀ (W × PH·C)``, a batched GEMM with N = PH·C (its
    transpose, N = PW = 7, runs several times slower in MKL), in (RoI, pw, ph, c) order; one strided copy puts it in
    (RoI, c, ph, pw). Backward: grad_out in (RoI, ph, c, pw) order (one strided copy), ``@ A_x`` batched, then one
    GEMM per chunk accumulates ``A_yᵀ @ rows`` into the image's (H, C·W) gradient. Buffers are allocated once per
    call and reused by every chunk."""

    @staticmethod
    def forward(ctx, input: Tensor, batch: Tensor, a_y: Tensor, a_x: Tensor) -> Tensor:
        n, c, h, w = input.shape
        k, ph, pw = a_y.shape[0], a_y.shape[1], a_x.shape[1]
        out = input.new_empty((k, c, ph, pw))
        chunks = _chunks(batch, n, max(_MIN_CHUNK, _CHUNK_ELEMENTS // (ph * c * w), 1))
        ctx.save_for_backward(a_y, a_x)
        ctx.chunks, ctx.shape = chunks, input.shape
        if not chunks:
            return out
        most = max(e - s for _, s, e in chunks)
        fmaps = input.permute(0, 2, 1, 3).reshape(n, h, c * w)  # (N, H, C·W): one copy of the (small) map
        rows_buf = input.new_empty((most * ph, c * w))
        pooled_buf = input.new_empty((most, pw, ph * c))
        for b, s, e in chunks:
            m = e - s
            rows = torch.mm(a_y[s:e].reshape(m * ph, h), fmaps[b], out=rows_buf[: m * ph])  # (m·PH, C·W)
            pooled = torch.bmm(a_x[s:e], rows.view(m, ph * c, w).transpose(1, 2), out=pooled_buf[:m])  # (m, PW, PH·C)
            out[s:e].copy_(pooled.view(m, pw, ph, c).permute(0, 3, 2, 1))
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        a_y, a_x = ctx.saved_tensors
        n, c, h, w = ctx.shape
        ph, pw = a_y.shape[1], a_x.shape[1]
        grad = grad_out.new_zeros((n, h, c * w))
        if ctx.chunks:
            most = max(e - s for _, s, e in ctx.chunks)
            grad_buf = grad_out.new_empty((most, ph, c, pw))
            rows_buf = grad_out.new_empty((most, ph * c, w))
            for b, s, e in ctx.chunks:
                m = e - s
                grad_pooled = grad_buf[:m]
                grad_pooled.copy_(grad_out[s:e].permute(0, 2, 1, 3))  # (m, PH, C, PW)
                rows = torch.bmm(grad_pooled.view(m, ph * c, pw), a_x[s:e], out=rows_buf[:m])  # (m, PH·C, W)
                grad[b].addmm_(a_y[s:e].reshape(m * ph, h).t(), rows.view(m * ph, c * w))
        return grad.view(n, h, c, w).permute(0, 2, 1, 3).contiguous(), None, None, None


def _separable(input: Tensor, rois: Tensor, pooled: tuple[int, int], spatial_scale: float, sampling_ratio: int,
               aligned: bool) -> Tensor:
    """The separable fast path on checked arguments (see :func:`roi_align`)."""
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
    if batch.numel() and not bool((batch[1:] >= batch[:-1]).all()):  # RoIs by image, and the result put back
        order = torch.argsort(batch, stable=True)
        out = _SeparableRoIAlign.apply(input.contiguous(), batch[order], a_y[order], a_x[order])
        return out[torch.argsort(order)]
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


ROI_ALIGN_PATHS = ("auto", "separable", "torchvision")


def roi_align(
    input: Tensor,
    boxes: Tensor | Sequence[Tensor],
    output_size: int | Sequence[int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
    *,
    path: str = "auto",
) -> Tensor:
    """Drop-in for ``torchvision.ops.roi_align``: same arguments, same result.

    ``input`` Tensor[N, C, H, W]; ``boxes`` Tensor[K, 5] (batch index, x1, y1, x2, y2) or a list of Tensor[L, 4], one
    per image; ``output_size`` (pooled_h, pooled_w) or an int; ``spatial_scale`` maps box coordinates to the map;
    ``sampling_ratio`` samples per bin along each axis (<= 0: ceil(roi / output) per RoI); ``aligned`` shifts boxes
    by half a cell. Returns Tensor[K, C, pooled_h, pooled_w].

    ``path``: ``"auto"`` — the separable fast path where :func:`prefer_separable` says it is faster (CPU, small
    maps), torchvision's kernel elsewhere; ``"separable"`` — always the fast path (any device, float32/float64);
    ``"torchvision"`` — always torchvision's kernel.
    """
    if path not in ROI_ALIGN_PATHS:
        raise ValueError(f"path must be one of {', '.join(ROI_ALIGN_PATHS)}, got path={path!r}")
    pooled = _output_size(output_size)
    rois = _as_rois(boxes, input)
    _check(input, rois)
    if path == "separable" or (path == "auto" and prefer_separable(input, rois, pooled, spatial_scale,
                                                                    sampling_ratio, aligned)):
        return _separable(input, rois, pooled, spatial_scale, sampling_ratio, aligned)
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
