"""Result files: what :func:`labkit.experiments.run_experiment` measured, written and read back.

An experiment folder holds ``runs.csv`` (one row per arm and seed, :data:`RUN_COLUMNS`), ``summary.csv`` (one row
per arm, :data:`SUMMARY_COLUMNS`) and ``results.json`` (both, with the experiment, scale, provenance and every run's
exact config), each written atomically through :mod:`labkit._io`. :func:`measured_results` finds the committed ones.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from labkit._io import write_atomic, write_json
from labkit.experiments.designs import EXPERIMENT_NAMES, METRICS
from labkit.stats import Summary

__all__ = ["RESULT_FILES", "RUN_COLUMNS", "SUMMARY_COLUMNS", "OK", "DIVERGED", "NO_SUMMARY", "Results",
           "write_results", "load_results", "measured_results"]

RESULT_FILES = ("runs.csv", "summary.csv", "results.json")
RUN_COLUMNS = ("experiment", "arm", "label", "seed", "label_noise", "label_scale", "status", *METRICS,
               "train_seconds", "run_dir", "git_commit", "git_dirty", "reused")
SUMMARY_COLUMNS = ("experiment", "arm", "label", "label_noise", "label_scale", "n_seeds", "n_failed",
                   *(f"{m}_{part}" for m in METRICS for part in ("mean", "ci95", "low", "high")))

OK = "ok"
DIVERGED = "diverged"  # the training loss became non-finite; the run is counted, not averaged
#: the summary of no values (every run failed, or the metric did not exist yet)
NO_SUMMARY = Summary(mean=math.nan, half_width=math.nan, n=0, std=math.nan, confidence=0.95)


@dataclass(frozen=True)
class Results:
    """What :func:`run_experiment` measured: ``rows`` (one dict per arm and seed) and ``summary`` (per arm: the
    arm's fields and a :class:`~labkit.stats.Summary` per metric), with the experiment, scale and provenance."""

    experiment: Mapping[str, Any]
    scale: Mapping[str, Any]
    provenance: Mapping[str, Any]
    rows: tuple[Mapping[str, Any], ...]
    summary: tuple[Mapping[str, Any], ...]
    out: Path | None = None
    configs: tuple[Mapping[str, Any], ...] = field(default=())

    @property
    def name(self) -> str:
        return str(self.experiment["name"])

    def to_json(self) -> dict[str, Any]:
        summary = [{**{k: v for k, v in s.items() if k not in METRICS},
                    **{m: s[m].to_dict() for m in METRICS}} for s in self.summary]
        return {"experiment": dict(self.experiment), "scale": dict(self.scale), "provenance": dict(self.provenance),
                "metrics": list(METRICS), "confidence": 0.95, "runs": [dict(r) for r in self.rows],
                "summary": summary, "configs": [dict(c) for c in self.configs]}


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_results(results: Results, out: str | os.PathLike) -> tuple[Path, ...]:
    """Write ``runs.csv``, ``summary.csv`` and ``results.json`` under ``out`` (each atomically)."""
    out = Path(out)

    def cell(v: Any) -> Any:
        return "" if v is None else v

    # rows of runs made before runs recorded their commit have no git_commit / git_dirty / reused: blank cells
    runs = _csv_text(RUN_COLUMNS, ([cell(r.get(c)) for c in RUN_COLUMNS] for r in results.rows))
    summary_rows = []
    for s in results.summary:
        row = [cell(s[c]) for c in SUMMARY_COLUMNS[:7]]
        for m in METRICS:
            d = s[m]
            row += ["" if math.isnan(v) else v for v in (d.mean, d.half_width, d.low, d.high)]
        summary_rows.append(row)
    paths = tuple(out / name for name in RESULT_FILES)
    write_atomic(paths[0], runs)
    write_atomic(paths[1], _csv_text(SUMMARY_COLUMNS, summary_rows))
    write_json(paths[2], results.to_json())
    return paths


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def load_results(path: str | os.PathLike) -> Results:
    """Read the ``results.json`` that :func:`run_experiment` wrote (``path``: the file or its folder)."""
    path = Path(path)
    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"results: no results.json at {file} (expected the folder an experiment wrote)")
    try:
        data = json.loads(file.read_text())
        # a file written before a metric existed has no summary of it: that metric reads as undefined
        summary = tuple(
            {**{k: v for k, v in s.items() if k not in METRICS},
             **{m: Summary(mean=_nan_if_none(s[m]["mean"]), half_width=_nan_if_none(s[m]["half_width"]),
                           n=s[m]["n"], std=_nan_if_none(s[m]["std"]), confidence=s[m]["confidence"])
                if m in s else NO_SUMMARY for m in METRICS}}
            for s in data["summary"])
        return Results(experiment=data["experiment"], scale=data["scale"], provenance=data["provenance"],
                       rows=tuple(data["runs"]), summary=summary, out=file.parent, configs=tuple(data["configs"]))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"results: {file} is not an experiment's results.json: {exc!r}") from None


def measured_results(results_dir: str | os.PathLike, name: str, folder: str | None = None) -> Results | None:
    """Committed measured results of experiment ``name`` under ``results_dir``: those in ``<results_dir>/<folder>``
    when ``folder`` is given, else any ``<results_dir>/<name>-*/`` holding a results.json (the newest by date when
    several); None when there are none. Results found there of another experiment are an error."""
    if name not in EXPERIMENT_NAMES:
        raise ValueError(f"name must be one of {EXPERIMENT_NAMES}, got name={name!r}")
    if folder is not None:
        file = Path(results_dir) / folder / "results.json"
        found = [load_results(file)] if file.is_file() else []
    else:
        found = [load_results(p) for p in sorted(Path(results_dir).glob(f"{name}-*/results.json"))]
    wrong = [str(r.out) for r in found if r.name != name]
    if wrong:
        raise ValueError(f"folder: expected results of {name!r}, found another experiment's in {wrong}")
    return max(found, key=lambda r: str(r.provenance.get("date", ""))) if found else None
