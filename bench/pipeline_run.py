"""The pipeline itself (bridge + one worker with 2 pool processes): throughput, CPU, lag.

Throughput: every object is uploaded first (no events); the clock starts when the first of the
N events is sent and stops at the last document's ``indexed_at``.  CPU: ``/proc`` times of the
bridge and the worker tree over that span.  Lag: files uploaded one by one at a steady rate,
each timed from the start of its upload to its ``indexed_at``.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procstat
from bench.harness import BRIDGE, Harness, wait_indexed, worker
from bench.uploads import put_objects, send_events, upload_and_notify
from devstack.stack import ProcSpec

#: pool processes of the worker (the Procfile's default)
CONCURRENCY = 2


@dataclass
class PipelineResult:
    files: int
    seconds: float
    #: CPU seconds of the bridge and the worker tree (main + pool) over the throughput run
    cpu_s: float
    cpu_by_process: dict[str, float]
    lag_rate_fps: float
    lags_s: list[float] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.files / self.seconds if self.seconds else 0.0


def percentile(values: list[float], p: float) -> float:
    """``p`` in 0..100, linear interpolation (``statistics.quantiles`` inclusive method)."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[min(98, max(0, round(p) - 1))] if p < 100 else max(values)


def _trees(pids: dict[str, int]) -> dict[str, dict[int, float]]:
    return {name: procstat.tree_cpu(pid) for name, pid in pids.items()}


def run(harness: Harness, files: list[tuple[Path, str]], lag_files: int, lag_rate: float,
        say: Any = print, *, name: str = "pipeline", procs: list[ProcSpec] | None = None,
        env: dict[str, str] | None = None) -> PipelineResult:
    """The throughput and lag runs; ``procs``/``env`` replace the processes/settings (tuning)."""
    procs = procs or [BRIDGE, worker("worker", CONCURRENCY)]
    with harness.stack(name, procs=procs, env=env) as stack:
        keys = [key for _, key in files]
        objects = put_objects(files)
        pids = {name: proc.pid for name, proc in stack.procs.items()}
        time.sleep(2.0)  # let start-up work (first polls, heartbeat thread) settle
        say(f"  throughput: {len(keys)} events at once, {', '.join(p.name for p in procs)} ...")
        before = _trees(pids)
        started = send_events(objects)
        done = wait_indexed(keys, timeout=max(300.0, len(keys) * 2.0))
        after = _trees(pids)
        seconds = max(done.values()) - started
        by_process = {name: procstat.cpu_delta(before[name], after[name]) for name in pids}
        result = PipelineResult(len(keys), seconds, sum(by_process.values()),
                                by_process, lag_rate)
        say(f"  throughput: {result.fps:.1f} files/s; CPU {result.cpu_s:.1f} s "
            f"({', '.join(f'{k} {v:.1f} s' for k, v in by_process.items())})")
        say(f"  lag: {lag_files} uploads at {lag_rate:g} files/s ...")
        started_at: dict[str, float] = {}
        t0 = time.monotonic()
        for i in range(lag_files):
            path, key = files[i % len(files)]
            time.sleep(max(0.0, t0 + i / lag_rate - time.monotonic()))
            lag_key = f"lag/{i:05d}-{key.rsplit('/', 1)[-1]}"
            started_at[lag_key] = upload_and_notify(path, lag_key)
        done = wait_indexed(list(started_at), timeout=300)
        result.lags_s = sorted(done[k] - started_at[k] for k in started_at)
        say(f"  lag: p50 {percentile(result.lags_s, 50):.2f} s, "
            f"p99 {percentile(result.lags_s, 99):.2f} s")
    return result
