"""Helpers shared by the benchmark scripts: timing with medians, real input files."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
DATA = REPOSITORY.parent / "shared" / "data"
GRCH38 = DATA / "genes" / "tenx" / "jeong2624_scRNA-seq-project_GRCh38-2020-A_features.tsv.gz"


def timed(function: Callable[[], object], repeat: int,
          setup: Callable[[], object] | None = None) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls, each after an untimed ``setup``."""
    seconds = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


def median_ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def p95_ms(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000


def report(rows: list[tuple[str, list[float]]], baseline: str) -> None:
    """Print median, p95 and the ratio of each median to the baseline's median."""
    base = median_ms(dict(rows)[baseline])
    print(f"baseline: {baseline}")
    print(f"{'operation':<36}{'median ms':>11}{'p95 ms':>10}{'ratio':>9}")
    for label, seconds in rows:
        print(f"{label:<36}{median_ms(seconds):>11.2f}{p95_ms(seconds):>10.2f}"
              f"{median_ms(seconds) / base:>9.2f}")
