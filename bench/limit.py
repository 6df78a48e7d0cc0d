"""The limit: the same work per file (``bench.work.process``), in 2 processes, no queues.

Processes are started and warmed up (imports, clients) before the clock starts; files are
handed out a few at a time so both processes stay busy to the end.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

#: files handed to a process at a time
CHUNK = 4


@dataclass(frozen=True)
class LimitResult:
    files: int
    seconds: float
    #: CPU seconds inside ``extract_file``, summed over all files
    extract_cpu_s: float
    #: key -> CPU seconds of its extraction
    per_file_cpu_s: dict[str, float]

    @property
    def fps(self) -> float:
        return self.files / self.seconds if self.seconds else 0.0


def _init(env: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(env)
    import bench.work  # noqa: F401  (imports and clients before the clock starts)


def _warm(_: int) -> int:
    from index import get_backend
    from pipeline import aws

    aws.s3()
    get_backend().count()
    time.sleep(0.5)  # so that each process takes one warm-up item
    return os.getpid()


def _one(item: tuple[str, str]) -> tuple[str, str, float]:
    from bench.work import process
    from pipeline.objects import ObjectRef

    bucket, key = item
    done = process(ObjectRef(bucket=bucket, key=key, event_time="2000-01-01T00:00:00Z",
                             event_name="ObjectCreated:Put"))
    return done.key, done.outcome, done.extract_cpu_s


def run_limit(bucket: str, keys: list[str], env: Mapping[str, str],
              processes: int = 2) -> LimitResult:
    """Process every key once with ``processes`` processes; ``env`` names endpoints and index."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_init,
                             initargs=(dict(env),)) as pool:
        list(pool.map(_warm, range(processes)))
        started = time.perf_counter()
        results = list(pool.map(_one, [(bucket, k) for k in keys], chunksize=CHUNK))
        seconds = time.perf_counter() - started
    per_file = {key: cpu for key, _, cpu in results}
    return LimitResult(len(results), seconds, sum(per_file.values()), per_file)
