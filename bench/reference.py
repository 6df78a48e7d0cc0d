"""The runs the pipeline is measured against, on one stack with no pipeline processes.

- limit: the same work per file in 2 processes, no queues (``bench.limit``);
- baseline: the old design, one receive-one/process/delete loop (``bench.baselines``);
- bridge: one bridge process (real Celery dispatch, no-op dispatch, a threaded prototype)
  against a bare receive-10/delete-batch loop, each on the same pre-loaded events queue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import Harness
from bench.limit import LimitResult, run_limit
from bench.uploads import put_objects, queue_depth, send_events

logger = logging.getLogger(__name__)

#: the bridge variants, in the order they run: name -> probe arguments
BRIDGE_RUNS: dict[str, tuple[str, ...]] = {
    "raw": ("--mode", "raw"),
    "noop": ("--mode", "noop"),
    "celery": ("--mode", "celery"),
    "celery-no-sent-event": ("--mode", "celery", "--no-sent-event"),
    "threaded": ("--mode", "threaded"),
    "threaded-no-sent-event": ("--mode", "threaded", "--no-sent-event"),
}


@dataclass
class ReferenceResult:
    limit: LimitResult
    baseline: dict[str, Any]
    #: mode -> probe output (events, seconds, cpu_s)
    bridge: dict[str, dict[str, Any]] = field(default_factory=dict)


def run(harness: Harness, files: list[tuple[Path, str]], bridge_events: int,
        say: Any = print) -> ReferenceResult:
    from pipeline.settings import get_settings

    with harness.stack("reference", procs=[]) as stack:
        bucket = get_settings().upload_bucket
        keys = [key for _, key in files]
        objects = put_objects(files)
        say(f"  limit: {len(keys)} files, 2 processes, no queues ...")
        limit = run_limit(bucket, keys, {**stack.env,
                                         "SQLITE_PATH": str(stack.run_dir / "limit.sqlite3")})
        say(f"  limit: {limit.fps:.1f} files/s")
        say(f"  baseline: old design, one loop, {len(keys)} files ...")
        send_events(objects)
        baseline = harness.run_json(
            ["-m", "bench.baselines.old_worker", "--expect", str(len(keys))],
            {**stack.env, "SQLITE_PATH": str(stack.run_dir / "baseline.sqlite3")},
            stack.logs / "old_worker.log", timeout=1800)
        say(f"  baseline: {baseline['files'] / baseline['seconds']:.1f} files/s")
        result = ReferenceResult(limit, baseline)
        fake: dict[str, tuple[int, str | None]] = {
            f"bridge/event-{i:06d}.txt": (100, None) for i in range(bridge_events)}
        for mode, probe_args in BRIDGE_RUNS.items():
            if queue_depth("events"):
                raise RuntimeError("events queue not empty before the bridge run")
            send_events(fake)
            result.bridge[mode] = harness.run_json(
                ["-m", "bench.bridge_probe", *probe_args, "--expect", str(bridge_events)],
                stack.env, stack.logs / f"bridge-{mode}.log", timeout=900)
            probe = result.bridge[mode]
            say(f"  bridge {mode}: {probe['events'] / probe['seconds']:.0f} events/s")
    return result
