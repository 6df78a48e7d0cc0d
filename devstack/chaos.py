"""``make chaos [N=300] [REPORT=path.json]``: a soak under failure, with a verdict.

Uploads N files (good ones, corrupt ones, oversized ones), makes 20 % of index writes fail
transiently, and ``kill -9``s a random worker (with its pool processes) every few seconds and
restarts it, until every file has an outcome; then waits for the queues to drain and reports:
files uploaded, indexed, metadata-only and dead-lettered (by reason), missing, duplicate
documents, the highest receive count seen, wall time.  Exit 0 only if nothing is missing or
duplicated, every corrupt or oversized file ended metadata-only or dead-lettered with its
reason, and every working queue is empty at the end.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from devstack.demo import collect, iter_files
from devstack.stack import RUN_DIR, ProcSpec, Stack

#: bytes; the object-size cap during the soak (oversized files are just above it)
MAX_OBJECT_BYTES = 256 * 1024
WORKERS = ("worker1", "worker2")
WORKER = ("celery -A tasks worker --queues fetch,extract-pdf,extract-other,extract-ocr,index "
          "--concurrency 2 --hostname {name}@%h --loglevel INFO")
CHAOS_ENV = {
    "FAULT_INDEX_TRANSIENT_P": "0.2", "MAX_RETRIES": "10", "RETRY_BACKOFF_BASE": "1",
    "RETRY_BACKOFF_MAX": "4", "VISIBILITY_TIMEOUT": "9", "HEARTBEAT_INTERVAL": "3",
    "MAX_RECEIVE_COUNT": "10", "MAX_OBJECT_BYTES": str(MAX_OBJECT_BYTES),
    "BRIDGE_WAIT_TIME_SECONDS": "1",
}
WORKING_QUEUES = ("events", "fetch", "extract-pdf", "extract-other", "extract-ocr", "index")


def make_files(root: Path, n: int, rng: random.Random) -> dict[str, str]:
    """Write ``n`` files under ``root``; returns key -> kind (good, corrupt, oversized)."""
    import pymupdf

    kinds: dict[str, str] = {}
    for i in range(n):
        roll = rng.random()
        if roll < 0.15:
            key, kind = f"corrupt/broken-{i:04d}.pdf", "corrupt"
            data = b"%PDF-1.7\n" + rng.randbytes(rng.randint(50, 4000))
        elif roll < 0.30:
            key, kind = f"oversized/huge-{i:04d}.bin", "oversized"
            data = rng.randbytes(MAX_OBJECT_BYTES + rng.randint(1, 50_000))
        elif roll < 0.45:
            key, kind = f"pdf/report-{i:04d}.pdf", "good"
            doc = pymupdf.open()
            page = doc.new_page()
            page.insert_text((72, 72), f"chaos report number {i} token{i:04d}")
            data = doc.tobytes()
        else:
            key, kind = f"text/フォルダ {i % 7}/note-{i:04d}.txt", "good"
            data = f"会議メモ {i} token{i:04d}\n".encode() * rng.randint(1, 50)
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        kinds[key] = kind
    return kinds


class Killer(threading.Thread):
    """``kill -9`` a random worker every few seconds, then restart it."""

    def __init__(self, stack: Stack, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.stack, self.rng = stack, rng
        self.stopping = threading.Event()
        self.kills = 0

    def run(self) -> None:
        while not self.stopping.wait(self.rng.uniform(2.0, 5.0)):
            victim = self.rng.choice(WORKERS)
            self.stack.kill(victim)
            self.kills += 1
            self.stack.restart(victim)


def queue_depths(stack: Stack) -> dict[str, int]:
    from pipeline import aws
    from pipeline.settings import get_settings

    s = get_settings()
    depths = {}
    for logical in WORKING_QUEUES:
        attrs = aws.sqs(s).get_queue_attributes(
            QueueUrl=aws.queue_url(s.queue_name(logical), s), AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        depths[logical] = sum(int(v) for v in attrs.values())
    return depths


def max_receive_count(stack: Stack) -> int:
    highest = 1
    for name in WORKERS:
        path = stack.logs / f"{name}.log"
        for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
            if '"redelivered message"' in line:
                highest = max(highest, int(json.loads(line).get("receive_count", 1)))
    return highest


def verdict(kinds: dict[str, str], outcomes: dict[str, dict[str, Any]], duplicates: int,
            depths: dict[str, int]) -> list[str]:
    problems = []
    missing = [k for k in kinds if k not in outcomes]
    if missing:
        problems.append(f"{len(missing)} file(s) missing, e.g. {missing[:3]}")
    if duplicates:
        problems.append(f"{duplicates} duplicate document(s)")
    for key, kind in kinds.items():
        got = outcomes.get(key)
        if got and kind != "good" and (got["outcome"] == "indexed" or not got["reason"]):
            problems.append(f"{kind} file {key} ended {got['outcome']} without a reason")
    busy = {q: n for q, n in depths.items() if n}
    if busy:
        problems.append(f"queues not empty at the end: {busy}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--report", type=Path, default=RUN_DIR / "chaos-report.json")
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR / "chaos")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        kinds = make_files(Path(tmp), args.n, rng)
        procs = [ProcSpec("bridge", "python -m bridge")]
        procs += [ProcSpec(n, WORKER.format(name=n)) for n in WORKERS]
        (args.run_dir).mkdir(parents=True, exist_ok=True)
        empty_procfile = args.run_dir / "no-procfile"
        empty_procfile.write_text("")
        with Stack(run_dir=args.run_dir, procfile=empty_procfile, extra_procs=procs,
                   env=CHAOS_ENV) as stack:
            os.environ.update(stack.env)
            from pipeline import aws
            from pipeline.settings import get_settings

            bucket = get_settings().upload_bucket
            killer = Killer(stack, rng)
            killer.start()
            uploaded: dict[str, float] = {}
            s3 = aws.s3()

            def put(item: tuple[Path, str]) -> None:
                uploaded[item[1]] = time.time()
                s3.upload_file(str(item[0]), bucket, item[1])

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(put, iter_files(Path(tmp))))
            print(f"uploaded {len(uploaded)} files; killing workers while they work ...",
                  flush=True)
            outcomes = collect(uploaded, bucket, args.timeout)
            killer.stopping.set()
            killer.join()
            deadline = time.monotonic() + 120
            while any(queue_depths(stack).values()) and time.monotonic() < deadline:
                time.sleep(1)
            depths = queue_depths(stack)
            from index import get_backend

            backend = get_backend()
            duplicates = backend.count() - len({k for k, o in outcomes.items()
                                                if o["outcome"] != "dead_lettered"})
            receive = max_receive_count(stack)
            kills = killer.kills
    by_outcome = collections.Counter(o["outcome"] for o in outcomes.values())
    dead_reasons = collections.Counter(o["reason"] for o in outcomes.values()
                                       if o["outcome"] == "dead_lettered")
    report = {
        "uploaded": len(kinds), "indexed": by_outcome["indexed"],
        "metadata_only": by_outcome["metadata_only"],
        "dead_lettered": dict(dead_reasons), "missing": len(kinds) - len(outcomes),
        "duplicates": duplicates, "max_receive_count": receive, "worker_kills": kills,
        "queues_at_end": depths, "wall_seconds": round(time.monotonic() - started, 1),
        "by_kind": dict(collections.Counter(kinds.values())),
    }
    problems = verdict(kinds, outcomes, duplicates, depths)
    report["problems"] = problems
    for key, value in report.items():
        print(f"{key:>18}: {value}")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print("chaos: PASS" if not problems else "chaos: FAIL")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
