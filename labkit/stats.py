"""Summaries over seeds: the mean and its two-sided Student-t confidence interval.

With n seeds giving values v_1 … v_n, mean m and sample standard deviation s (divisor n − 1), the interval is
m ± t_{(1+c)/2, n−1} · s/√n, where t_{q, ν} is the q-quantile of Student's t with ν degrees of freedom and c the
confidence (0.95 by default). One seed gives no interval: its half-width is NaN, never 0.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np
from scipy import stats as _scipy_stats

__all__ = ["Summary", "mean_ci"]


@dataclass(frozen=True)
class Summary:
    """Mean ± half-width over ``n`` values; ``low``/``high`` the interval ends at ``confidence``."""

    mean: float
    half_width: float
    n: int
    std: float
    confidence: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "low": self.low, "high": self.high}

    def __str__(self) -> str:
        if math.isnan(self.half_width):
            return f"{self.mean:.3f} (n={self.n})"
        return f"{self.mean:.3f} ± {self.half_width:.3f}"


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> Summary:
    """Mean and Student-t ``confidence`` interval of ``values`` (one value per seed).

    ``values`` must be a non-empty sequence of finite numbers; ``confidence`` in (0, 1).
    """
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1), got confidence={confidence!r}")
    try:
        data = np.asarray(list(values), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"values must be a sequence of numbers, got {values!r}") from None
    if data.ndim != 1 or data.size == 0:
        raise ValueError(f"values must be a non-empty 1-d sequence of numbers, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"values must all be finite, got {data.tolist()}")
    n = int(data.size)
    mean = float(data.mean())
    if n == 1:
        return Summary(mean=mean, half_width=math.nan, n=1, std=math.nan, confidence=float(confidence))
    std = float(data.std(ddof=1))
    quantile = float(_scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1))
    return Summary(mean=mean, half_width=quantile * std / math.sqrt(n), n=n, std=std, confidence=float(confidence))
