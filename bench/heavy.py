"""Big files and a crash, on one stack with two workers of one pool process each.

Memory: before each big PDF the peak RSS (``VmHWM``) of every pool process is reset; after the
document is indexed the highest peak is the file's.  Recovery: a slow file (``FAULT_EXTRACT_HANG_S``
on keys under ``slow/``) is uploaded, the worker extracting it is ``kill -9``-ed with its pool,
and the clock runs from the kill to the document's ``indexed_at``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procstat
from bench.harness import BRIDGE, Harness, epoch, log_events, wait_for, wait_indexed, worker
from bench.uploads import upload_and_notify

WORKERS = ("worker1", "worker2")
#: bytes; above the 300 MB PDF
MAX_OBJECT_BYTES = 400 * 1024 * 1024


@dataclass(frozen=True)
class HeavyParams:
    big_pdf: Path
    many_pages_pdf: Path
    #: a small text file, the one whose worker is killed
    slow_file: Path
    #: seconds the slow file's extraction sleeps
    hang_s: float
    #: settings of the recovery run ("" = the defaults)
    visibility_timeout: str = ""
    heartbeat_interval: str = ""


@dataclass
class HeavyResult:
    rss_mb: dict[str, float]
    peak_was_reset: bool
    recovery_s: float
    recovery_picked_up_s: float
    visibility_timeout_s: int


def _pool_pids(stack: Any) -> list[int]:
    return [p for name in WORKERS for p in procstat.descendants(stack.procs[name].pid)]


class PeakSampler(threading.Thread):
    """Highest ``VmHWM`` of the workers' pool processes, including any started meanwhile."""

    def __init__(self, stack: Any, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.stack, self.interval = stack, interval
        self.peaks: dict[int, float] = {}
        self.stopping = threading.Event()

    def sample(self) -> None:
        for pid in _pool_pids(self.stack):
            self.peaks[pid] = max(self.peaks.get(pid, 0.0), procstat.peak_rss_mb(pid))

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.sample()

    def stop(self) -> float:
        self.stopping.set()
        self.join()
        self.sample()
        return max(self.peaks.values(), default=0.0)


def run(harness: Harness, params: HeavyParams, say: Any = print) -> HeavyResult:
    from pipeline.settings import get_settings

    env = {"MAX_OBJECT_BYTES": str(MAX_OBJECT_BYTES), "FAULT_EXTRACT_HANG_S": str(params.hang_s),
           "FAULT_KEY_PREFIX": "slow/"}
    if params.visibility_timeout:
        env["VISIBILITY_TIMEOUT"] = params.visibility_timeout
    if params.heartbeat_interval:
        env["HEARTBEAT_INTERVAL"] = params.heartbeat_interval
    with harness.stack("heavy", procs=[BRIDGE, *(worker(n, 1) for n in WORKERS)],
                       env=env) as stack:
        rss: dict[str, float] = {}
        reset_ok = True
        for label, path in (("big_pdf", params.big_pdf), ("many_pages", params.many_pages_pdf)):
            pool = _pool_pids(stack)
            if not pool:
                raise RuntimeError(f"no pool processes under {WORKERS}; see {stack.logs}")
            reset_ok = all([procstat.reset_peak(p) for p in pool]) and reset_ok
            sampler = PeakSampler(stack)
            sampler.start()
            key = f"big/{path.name}"
            say(f"  memory: {path.name} ({path.stat().st_size / 2**20:.0f} MB) ...")
            upload_and_notify(path, key)
            wait_indexed([key], timeout=900)
            rss[label] = sampler.stop()
            say(f"  memory: peak pool RSS {rss[label]:.0f} MB")
        key = "slow/crash-me.txt"
        say(f"  recovery: {key} hangs {params.hang_s:g} s; kill -9 of its worker ...")
        upload_and_notify(params.slow_file, key)
        victim = wait_for(lambda: next((n for n in WORKERS if any(
            e.get("key") == key for e in log_events(
                stack.logs / f"{n}.log", "injected fault: extraction hangs"))), None),
            timeout=120, what="the slow file reaching a worker")
        killed_at = time.time()
        stack.kill(victim)
        survivor = next(n for n in WORKERS if n != victim)
        picked = wait_for(lambda: next((e for e in log_events(
            stack.logs / f"{survivor}.log", "injected fault: extraction hangs")
            if e.get("key") == key), None), timeout=900, what="the survivor taking the file")
        done = wait_indexed([key], timeout=900)
        result = HeavyResult(rss, reset_ok, done[key] - killed_at,
                             epoch(str(picked["ts"])) - killed_at,
                             get_settings().visibility_timeout)
        say(f"  recovery: indexed {result.recovery_s:.1f} s after the kill "
            f"(picked up after {result.recovery_picked_up_s:.1f} s)")
    return result
