"""``python -m bench.tuning``: the pipeline row under other settings, to back tuning proposals.

Runs throughput (N files at once) and lag (files at a steady rate) for each variant, on the
same ElasticMQ + moto set-up as ``python -m bench``, and prints one line per variant.  The
variants change only environment settings or Celery options at start-up (``bench.tuning_app``);
nothing in the repository's configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench import corpus, pipeline_run
from bench.harness import BRIDGE, WORKER, Harness, worker
from devstack.elasticmq import ElasticMQServer
from devstack.stack import RUN_DIR, ProcSpec

_NO_EVENTS_BRIDGE = ProcSpec("bridge", "python -c \"import bench.tuning_app, runpy; "
                                       "runpy.run_module('bridge', run_name='__main__')\"")


def _no_events_worker(name: str, concurrency: int) -> ProcSpec:
    command = WORKER.format(name=name, concurrency=concurrency)
    return ProcSpec(name, command.replace("-A tasks", "-A bench.tuning_app"))


#: name -> (processes, environment)
VARIANTS: dict[str, tuple[list[ProcSpec], dict[str, str]]] = {
    "as shipped": ([BRIDGE, worker("worker", 2)], {}),
    "WORKER_WAIT_TIME_SECONDS=0": ([BRIDGE, worker("worker", 2)],
                                   {"WORKER_WAIT_TIME_SECONDS": "0"}),
    "task events off": ([_NO_EVENTS_BRIDGE, _no_events_worker("worker", 2)], {}),
    "events off + wait 0": ([_NO_EVENTS_BRIDGE, _no_events_worker("worker", 2)],
                            {"WORKER_WAIT_TIME_SECONDS": "0"}),
    "events off + wait 0 + concurrency 4": (
        [_NO_EVENTS_BRIDGE, _no_events_worker("worker", 4)], {"WORKER_WAIT_TIME_SECONDS": "0"}),
    "events off + wait 0 + prefetch 4": (
        [_NO_EVENTS_BRIDGE, _no_events_worker("worker", 2)],
        {"WORKER_WAIT_TIME_SECONDS": "0", "BENCH_PREFETCH": "4"}),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tuning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--files", type=int, default=200)
    parser.add_argument("--lag-files", type=int, default=100)
    parser.add_argument("--lag-rate", type=float, default=5.0)
    parser.add_argument("--only", action="append", choices=sorted(VARIANTS), default=None)
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR / "bench-tuning")
    parser.add_argument("--report", type=Path, default=RUN_DIR / "bench-tuning.json")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        files = corpus.make_small(Path(tmp), args.files)
        with ElasticMQServer.start(home=args.run_dir / "elasticmq") as sqs:
            harness = Harness(args.run_dir, sqs)
            for i, name in enumerate(args.only or VARIANTS):
                procs, env = VARIANTS[name]
                print(f"{name}:", flush=True)
                r = pipeline_run.run(harness, files, args.lag_files, args.lag_rate,
                                     name=f"v{i}", procs=procs, env=env)
                results[name] = {
                    "fps": round(r.fps, 2),
                    "cpu_ms_per_file": round(1000 * r.cpu_s / r.files, 1),
                    "lag_p50_s": round(pipeline_run.percentile(r.lags_s, 50), 2),
                    "lag_p99_s": round(pipeline_run.percentile(r.lags_s, 99), 2)}
    print(f"\n{'variant':<38} {'files/s':>8} {'CPU ms/file':>12} {'lag p50':>8} {'lag p99':>8}")
    for name, v in results.items():
        print(f"{name:<38} {v['fps']:>8.1f} {v['cpu_ms_per_file']:>12.1f} "
              f"{v['lag_p50_s']:>8.2f} {v['lag_p99_s']:>8.2f}")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
