"""Visibility heartbeat: a long task never becomes visible to a second worker.

kombu never extends a message's visibility while its task runs.  This consumer bootstep starts
one daemon thread per worker that, every ``HEARTBEAT_INTERVAL`` seconds, calls
``ChangeMessageVisibilityBatch`` for every message the worker holds and has not acknowledged:
running *and* reserved-but-not-started ones (``celery.worker.state.requests``; extending only
the active ones lets a second worker take reserved messages).  So the stage queues can use a
short ``VisibilityTimeout`` (a minute): a crashed worker's message comes back within that
minute, while a 20-minute PDF is never seen by anyone else.

- A message is extended until its task is acknowledged (or rejected), and no longer than
  ``TASK_TIME_LIMIT`` + one visibility timeout after it was received: past that the hard time
  limit has already killed the task, and a runaway must not hold its message forever.
- The thread is not the worker's timer: at warm shutdown the consumer stops before the pool
  has finished, and the thread must keep extending until the running tasks are done.  It ends
  by itself once the worker is shutting down and holds no unacknowledged message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any

from celery import bootsteps
from celery.worker import state

from pipeline import aws, metrics
from pipeline.settings import Settings, get_settings

logger = logging.getLogger(__name__)

#: SQS accepts at most 10 entries per ChangeMessageVisibilityBatch
BATCH = 10


def _held(requests: dict[str, Any]) -> list[Any]:
    return [r for r in list(requests.values()) if not getattr(r, "acknowledged", True)]


class Heartbeat:
    """The thread's work, separated from Celery for testing: ``beat()`` extends once."""

    def __init__(self, settings: Settings, requests: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.requests = state.requests if requests is None else requests
        self.first_seen: dict[str, float] = {}
        self.extended = 0
        self.failures = 0

    def beat(self) -> int:
        """Extend every held message once; returns how many were extended."""
        now = time.monotonic()
        failures_before = self.failures
        ceiling = self.settings.task_time_limit + self.settings.visibility_timeout
        by_queue: dict[str, list[tuple[str, str]]] = defaultdict(list)
        held = _held(self.requests)
        live = set()
        for request in held:
            info = getattr(request.message, "delivery_info", {}) or {}
            raw, url = info.get("sqs_message"), info.get("sqs_queue")
            if not raw or not url:
                continue
            live.add(request.id)
            started = self.first_seen.setdefault(request.id, now)
            if now - started > ceiling:
                logger.warning("visibility no longer extended: task exceeded its ceiling",
                               extra={"task_id": request.id, "ceiling_s": ceiling})
                continue
            by_queue[url].append((request.id, raw["ReceiptHandle"]))
        for gone in set(self.first_seen) - live:
            del self.first_seen[gone]
        extended = 0
        client = aws.sqs(self.settings)
        for url, entries in by_queue.items():
            for i in range(0, len(entries), BATCH):
                chunk = entries[i:i + BATCH]
                try:
                    resp = client.change_message_visibility_batch(QueueUrl=url, Entries=[
                        {"Id": str(n), "ReceiptHandle": handle,
                         "VisibilityTimeout": self.settings.visibility_timeout}
                        for n, (_, handle) in enumerate(chunk)])
                except Exception as exc:  # keep beating; the next beat may get through
                    self.failures += len(chunk)
                    logger.error("visibility extension failed", extra={"error": repr(exc)})
                    continue
                extended += len(resp.get("Successful", []))
                for failed in resp.get("Failed", []):
                    self.failures += 1
                    logger.warning("visibility extension refused: %s", failed.get("Message"),
                                   extra={"task_id": chunk[int(failed["Id"])][0]})
        self.extended += extended
        if extended or self.failures > failures_before:
            metrics.record_visibility(extended, self.failures - failures_before)
        return extended

    def holds_messages(self) -> bool:
        return bool(_held(self.requests))


class VisibilityHeartbeat(bootsteps.StartStopStep):
    """Consumer bootstep running one ``Heartbeat`` thread per worker process."""

    requires = ("celery.worker.consumer.tasks:Tasks",)
    _lock = threading.Lock()
    _thread: threading.Thread | None = None
    _stopping = threading.Event()

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.settings = get_settings()

    def start(self, parent: Any) -> None:
        if not self.settings.heartbeat_enabled:
            return
        cls = type(self)
        with cls._lock:
            cls._stopping.clear()
            if cls._thread is not None and cls._thread.is_alive():
                return  # consumer restart: the thread from before still runs
            cls._thread = threading.Thread(target=self._run, name="visibility-heartbeat",
                                           daemon=True)
            cls._thread.start()

    def stop(self, parent: Any) -> None:
        # do not stop yet: running tasks still need their messages extended; the thread
        # ends by itself when nothing is held any more
        type(self)._stopping.set()

    shutdown = stop

    def _run(self) -> None:
        heartbeat = Heartbeat(self.settings)
        interval = self.settings.heartbeat_interval
        logger.info("visibility heartbeat started", extra={
            "interval_s": interval, "visibility_s": self.settings.visibility_timeout})
        next_beat = 0.0
        while not (type(self)._stopping.is_set() and not heartbeat.holds_messages()):
            if time.monotonic() >= next_beat:
                heartbeat.beat()  # no SQS call when nothing is held
                next_beat = time.monotonic() + interval
            time.sleep(min(0.5, interval))
        logger.info("visibility heartbeat stopped", extra={"extended": heartbeat.extended})
