"""Stacks for the benchmark: SQS on one ElasticMQ server, S3 on each stack's moto server.

Every stack gets its own queue prefix (so runs never share a queue), run folder and index, and
this process's environment points at it only while the stack is up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from devstack.elasticmq import ElasticMQServer
from devstack.ports import free_port
from devstack.stack import ROOT, ProcSpec, Stack

T = TypeVar("T")
#: the Procfile's worker, with a name and a concurrency
WORKER = ("celery -A tasks worker --queues fetch,extract-pdf,extract-other,extract-ocr,index "
          "--concurrency {concurrency} --hostname {name}@%h --loglevel INFO")
BRIDGE = ProcSpec("bridge", "python -m bridge")


def worker(name: str, concurrency: int) -> ProcSpec:
    return ProcSpec(name, WORKER.format(name=name, concurrency=concurrency))


def epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _reset_caches() -> None:
    from index import get_backend
    from pipeline.settings import get_settings

    get_settings.cache_clear()
    get_backend.cache_clear()


@dataclass
class Harness:
    run_dir: Path
    sqs: ElasticMQServer

    @contextlib.contextmanager
    def stack(self, name: str, procs: list[ProcSpec],
              env: Mapping[str, str] | None = None) -> Iterator[Stack]:
        """A started stack; this process's environment points at it until the block ends."""
        run_dir = self.run_dir / name
        run_dir.mkdir(parents=True, exist_ok=True)
        procfile = run_dir / "no-procfile"
        procfile.write_text("")
        saved = dict(os.environ)
        stack = Stack(run_dir=run_dir, procfile=procfile, extra_procs=procs,
                      moto_port=free_port(),
                      env={**self.sqs.env(), "QUEUE_PREFIX": f"bench-{name}-", **(env or {})})
        stack.start()
        try:
            os.environ.update(stack.env)
            _reset_caches()
            yield stack
        finally:
            stack.stop()
            os.environ.clear()
            os.environ.update(saved)
            _reset_caches()

    def run_json(self, argv: list[str], env: Mapping[str, str], log: Path,
                 timeout: float) -> dict[str, Any]:
        """Run a bench helper process; its last stdout line is JSON."""
        with open(log, "ab") as err:
            result = subprocess.run([sys.executable, *argv], cwd=ROOT, env=dict(env),
                                    stdout=subprocess.PIPE, stderr=err, timeout=timeout,
                                    check=False)
        lines = result.stdout.decode(errors="replace").strip().splitlines()
        if result.returncode != 0 or not lines:
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}); see {log}")
        data: dict[str, Any] = json.loads(lines[-1])
        return data


def wait_for(check: Callable[[], T | None], timeout: float, what: str,
             interval: float = 0.25) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what}: not after {timeout:.0f} s")


def indexed_at(keys: list[str]) -> dict[str, float]:
    """key -> epoch seconds of its ``indexed_at``, for the keys the index holds."""
    from index import get_backend
    from pipeline.objects import document_id
    from pipeline.settings import get_settings

    bucket, backend = get_settings().upload_bucket, get_backend()
    found: dict[str, float] = {}
    for key in keys:
        doc = backend.get(document_id(bucket, key))
        if doc and doc.get("indexed_at"):
            found[key] = epoch(str(doc["indexed_at"]))
    return found


def wait_indexed(keys: list[str], timeout: float, interval: float = 0.5) -> dict[str, float]:
    """Poll until every key is indexed; key -> ``indexed_at`` epoch seconds.

    Raises:
        TimeoutError: naming how many keys are still missing.
    """
    deadline = time.monotonic() + timeout
    pending = set(keys)
    found: dict[str, float] = {}
    while pending:
        found.update(indexed_at(sorted(pending)))
        pending -= set(found)
        if not pending:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} of {len(keys)} file(s) not indexed after "
                               f"{timeout:.0f} s, e.g. {sorted(pending)[:3]}")
        time.sleep(interval)
    return found


def log_events(path: Path, msg: str) -> list[dict[str, Any]]:
    """JSON log lines of one process whose message contains ``msg``."""
    out = []
    for raw in path.read_text(errors="replace").splitlines() if path.exists() else []:
        if msg in raw:
            with contextlib.suppress(ValueError):
                out.append(json.loads(raw))
    return out
