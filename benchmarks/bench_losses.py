"""Forward + backward of D_{α,β} (labkit.losses) against torch's smooth_l1_loss on 10M float32 elements.

Reports the eager path (``LaplaceKLLoss``, and the functional ``laplace_kl_loss(x − target).mean()``) and the
compiled path (``LaplaceKLLoss(compile=True)``), each as a ratio to smooth_l1_loss. The repeats are interleaved —
one of each per round — so that a change in the machine's load (a shared 2-core machine) hits every contender alike;
each ratio is a ratio of medians over the timed rounds. Targets: eager ≤ 2.0 (issue 15), compiled ≤ 1.5.
Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from labkit.losses import LaplaceKLLoss, laplace_kl_loss


def _step(fn, x):
    x.grad = None
    t0 = time.perf_counter()
    fn().backward()
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds (after 2 warm-up rounds)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled path (needs a C++ compiler)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, generator=gen).to(args.device).requires_grad_(True)
    target = torch.randn(args.n, generator=gen).to(args.device)
    eager = LaplaceKLLoss(alpha=1.0, beta=1.0)
    contenders = {
        "smooth_l1": lambda: F.smooth_l1_loss(x, target, beta=1.0),
        "eager": lambda: eager(x, target),
        "functional": lambda: laplace_kl_loss(x - target, 1.0, 1.0).mean(),
    }
    compile_s = None
    if not args.no_compile:
        compiled = LaplaceKLLoss(alpha=1.0, beta=1.0, compile=True)
        t0 = time.perf_counter()
        compiled(x, target).backward()
        compile_s = time.perf_counter() - t0
        contenders["compiled"] = lambda: compiled(x, target)

    load_before = os.getloadavg()
    times = {name: [] for name in contenders}
    for i in range(args.repeats + 2):
        for name, fn in contenders.items():
            t = _step(fn, x)
            if i >= 2:  # the first two rounds are warm-up
                times[name].append(t)
    load_after = os.getloadavg()
    med = {name: statistics.median(ts) for name, ts in times.items()}
    ref = med["smooth_l1"]
    result = {
        "benchmark": "losses",
        "ratio": round(med["compiled"] / ref, 3) if "compiled" in med else None,
        "eager_ratio": round(med["eager"] / ref, 3),
        "functional_eager_ratio": round(med["functional"] / ref, 3),
        "ratio_eager": round(med["eager"] / ref, 3),  # the old key, kept for earlier readers
        "median_s": {name: round(m, 5) for name, m in med.items()},
        "smooth_l1_ms": round(1e3 * ref, 2),
        "laplace_kl_eager_ms": round(1e3 * med["eager"], 2),
        "laplace_kl_compiled_ms": round(1e3 * med["compiled"], 2) if "compiled" in med else None,
        "compile_s": round(compile_s, 1) if compile_s is not None else None,
        "target_ratio": 1.5,
        "target_eager_ratio": 2.0,
        "n": args.n,
        "repeats": args.repeats,
        "dtype": "float32",
        "device": args.device,
        "threads": torch.get_num_threads(),
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in load_after],
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "torch": torch.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
