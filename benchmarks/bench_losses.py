"""Forward + backward of D_{α,β} (labkit.losses) against torch's smooth_l1_loss on 10M float32 elements.

Reports the eager path and the compiled path (`LaplaceKLLoss(compile=True)`), each as a ratio to smooth_l1_loss
measured in the same run (median of the timed repeats after warm-up). The target (ratio ≤ 1.5 on CPU) applies to the
compiled path; the eager path is reported so the price of not compiling is visible.
Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from labkit.losses import LaplaceKLLoss


def _time(step, x, repeats: int) -> float:
    times = []
    for i in range(repeats + 2):
        x.grad = None
        t0 = time.perf_counter()
        step().backward()
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:  # the first two are warm-up
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, generator=gen).to(args.device).requires_grad_(True)
    target = torch.randn(args.n, generator=gen).to(args.device)
    eager = LaplaceKLLoss(alpha=1.0, beta=1.0)
    compiled = LaplaceKLLoss(alpha=1.0, beta=1.0, compile=True)
    t0 = time.perf_counter()
    compiled(x, target).backward()
    compile_s = time.perf_counter() - t0

    t_ref = _time(lambda: F.smooth_l1_loss(x, target, beta=1.0), x, args.repeats)
    t_eager = _time(lambda: eager(x, target), x, args.repeats)
    t_comp = _time(lambda: compiled(x, target), x, args.repeats)
    result = {
        "benchmark": "losses_forward_backward",
        "ratio": round(t_comp / t_ref, 3),
        "ratio_eager": round(t_eager / t_ref, 3),
        "smooth_l1_ms": round(1e3 * t_ref, 2),
        "laplace_kl_compiled_ms": round(1e3 * t_comp, 2),
        "laplace_kl_eager_ms": round(1e3 * t_eager, 2),
        "compile_s": round(compile_s, 1),
        "target_ratio": 1.5,
        "n": args.n,
        "dtype": "float32",
        "device": args.device,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "torch": torch.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
