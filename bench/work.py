"""The work of one file without any queue: the pipeline's own task functions, called in-process.

``fetch``, ``extract`` and ``index`` are Celery tasks; called directly (``task(arg)``) they run
the same code as in a worker -- stale check, HEAD, type sniff, download, (sandboxed) extraction,
claim-check, ordered upsert -- but send nothing: there is no chain to continue, and no retry or
dead letter (errors raise).  Used by the limit run (``bench.limit``) and the old-design
baseline (``bench.baselines.old_worker``), so the three throughput numbers do the same work per
file; only the orchestration differs.

Extraction CPU: the call that extracts (``extract_isolated`` in the task module, or
``extract_file`` if the task calls it directly) is wrapped; its CPU is this process's plus its
waited-for children's (the sandbox forks one per file).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.objects import ObjectRef

#: names the extract task module may call the extraction by, in order of preference
_EXTRACTION_CALLS = ("extract_isolated", "extract_file")
_cpu = {"extract_s": 0.0}


@dataclass(frozen=True)
class Done:
    key: str
    outcome: str
    #: CPU seconds of the extraction call (this process + its children)
    extract_cpu_s: float


def cpu_now() -> float:
    """CPU seconds of this process and of the children it has waited for."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _timed(call: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = cpu_now()
        try:
            return call(*args, **kwargs)
        finally:
            _cpu["extract_s"] += cpu_now() - started

    wrapper.__wrapped__ = call  # type: ignore[attr-defined]
    return wrapper


def _instrument() -> None:
    import tasks.extract as module

    for name in _EXTRACTION_CALLS:
        call = getattr(module, name, None)
        if call is not None:
            if not hasattr(call, "__wrapped__"):
                setattr(module, name, _timed(call))
            return
    raise RuntimeError(f"tasks.extract calls none of {_EXTRACTION_CALLS}: update bench/work.py")


def process(obj: ObjectRef) -> Done:
    """Run fetch -> extract -> index for one object in this process.

    Raises whatever a task raises (nothing is retried or dead-lettered here).
    """
    from tasks.base import DONE, REROUTE
    from tasks.extract import extract
    from tasks.fetch import fetch
    from tasks.index import index

    _instrument()
    before = _cpu["extract_s"]
    fetched = fetch(obj.to_dict())
    if isinstance(fetched, dict) and fetched.get(DONE):
        return Done(obj.key, "stale", 0.0)
    extracted = extract(fetched)
    while isinstance(extracted, dict) and extracted.get(REROUTE):  # e.g. on to OCR
        extracted = extract(extracted[REROUTE]["arg"])
    written = index(extracted)
    return Done(obj.key, str(written.get("outcome")), _cpu["extract_s"] - before)
