"""RoI align forward + backward on CPU: torchvision's kernel vs labkit's separable fast path, and what the
dispatching ``labkit.detection.roi_align.roi_align`` picks, on the lab's shapes and on larger maps.

Calls alternate between the implementations; medians of wall time and of process CPU time. The outputs and input
gradients are checked against torchvision's in the same run. Process settings are those of bench_train_cpu.py, the
same for both arms and reported: ``OMP_WAIT_POLICY=PASSIVE`` and ``THP_MEM_ALLOC_ENABLE=1`` unless already set (on a
shared 2-core machine, spinning OpenMP threads make every parallel BLAS call wait for a descheduled thread: without
PASSIVE the separable path measured several times slower there, torchvision's kernel, single-threaded, barely
changes). Last line: one JSON object.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep instead of spinning
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # torch's CPU allocator asks for huge pages: fewer page faults

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from torchvision.ops import roi_align as tv_roi_align  # noqa: E402

from labkit.detection.roi_align import prefer_separable, roi_align  # noqa: E402

# (name, images, channels, map h, map w, RoIs, spatial scale, sampling ratio)
CASES = [
    ("lab_128px_sr1", 8, 64, 16, 16, 512, 1 / 8, 1),
    ("issue_128px_sr2", 8, 128, 16, 16, 1024, 1 / 8, 2),
    ("lab_256px_sr1", 8, 64, 32, 32, 512, 1 / 8, 1),
    ("adaptive_128px", 8, 128, 16, 16, 1024, 1 / 8, -1),
    ("fpn_p2_800px", 2, 256, 200, 200, 1024, 1 / 4, 2),
]


def rois_for(gen, n, h, w, k, scale):
    extent = torch.tensor([w, h]) / scale
    corner = torch.rand(k, 2, generator=gen) * extent
    size = torch.rand(k, 2, generator=gen) * extent / 3 + 2
    batch = torch.randint(0, n, (k, 1), generator=gen).sort(dim=0).values.float()
    return torch.cat([batch, corner, corner + size], dim=1)


def fwd_bwd(fn, x, rois, pooled, scale, ratio, grad_out):
    x.grad = None
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(x, rois, pooled, scale, ratio)
    out.backward(grad_out)
    return time.perf_counter() - wall, time.process_time() - cpu, out.detach(), x.grad.clone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-large", action="store_true", help="leave out the 800 px FPN case")
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    results = []
    for name, n, c, h, w, k, scale, ratio in CASES:
        if args.skip_large and name.startswith("fpn"):
            continue
        x = torch.randn(n, c, h, w, generator=gen).requires_grad_(True)
        rois = rois_for(gen, n, h, w, k, scale)
        grad_out = torch.randn(k, c, 7, 7, generator=gen)
        times = {"torchvision": [], "separable": []}
        for i in range(args.repeats + 1):
            ref = fwd_bwd(tv_roi_align, x, rois, 7, scale, ratio, grad_out)
            got = fwd_bwd(functools.partial(roi_align, path="separable"), x, rois, 7, scale, ratio, grad_out)
            if i:  # the first pair warms up
                times["torchvision"].append(ref[:2])
                times["separable"].append(got[:2])
        out_err = float((got[2] - ref[2]).abs().max())
        grad_err = float((got[3] - ref[3]).abs().max())
        wall = {key: statistics.median(t[0] for t in ts) for key, ts in times.items()}
        cpu = {key: statistics.median(t[1] for t in ts) for key, ts in times.items()}
        row = {
            "case": name, "map": [n, c, h, w], "rois": k, "sampling_ratio": ratio,
            "torchvision_ms": round(1e3 * wall["torchvision"], 2),
            "separable_ms": round(1e3 * wall["separable"], 2),
            "ratio": round(wall["torchvision"] / wall["separable"], 2),
            "ratio_cpu_time": round(cpu["torchvision"] / cpu["separable"], 2),
            "dispatch_uses_separable": prefer_separable(x, rois, (7, 7), scale, ratio),
            "max_abs_err_out": out_err, "max_abs_err_grad": grad_err,
        }
        print(json.dumps(row), flush=True)
        results.append(row)
    print(json.dumps({
        "benchmark": "roi_align_cpu_forward_backward",
        "results": results,
        "threads": torch.get_num_threads(),
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "THP_MEM_ALLOC_ENABLE", "OMP_NUM_THREADS")},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU, torch {torch.__version__}",
    }))


if __name__ == "__main__":
    main()
