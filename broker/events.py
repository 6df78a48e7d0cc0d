"""Task events are published off the worker's main thread.

Every Celery event (task received, started, succeeded ...) is one SNS ``Publish``.  Done
synchronously, as kombu does, it runs on the worker's main thread, between receiving messages
and acking them, and halves the pipeline's throughput (measured: docs/performance.md).  Events
are best effort in Celery by design (monitors tolerate gaps), so the channel hands them to one
background thread per process, through a bounded queue: when the queue is full an event is
dropped and counted, never a task delayed.  At process exit the queue gets a short flush.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: events waiting to be published before new ones are dropped
MAX_PENDING = 10_000
#: seconds the exit flush may take
FLUSH_S = 2.0


class EventPublisher:
    """One daemon thread that runs publish calls in order; fork-safe (restarts per pid)."""

    def __init__(self) -> None:
        self._pending: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]
        self._pending = queue.Queue(MAX_PENDING)
        self._lock = threading.Lock()
        self._pid = 0
        self.dropped = 0
        self.failed = 0

    def submit(self, publish: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._ensure_thread()
        try:
            self._pending.put_nowait((publish, args, kwargs))
        except queue.Full:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                logger.warning("task events dropped: publisher backlog full",
                               extra={"dropped": self.dropped})

    def flush(self, timeout: float = FLUSH_S) -> None:
        """Wait (at most ``timeout``) until every submitted event was published."""
        if self._pid != os.getpid():
            return
        done = threading.Event()
        try:
            self._pending.put((lambda: done.set(), (), {}), timeout=timeout)
        except queue.Full:
            return
        done.wait(timeout)

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pending = queue.Queue(MAX_PENDING)  # a forked child starts empty
            threading.Thread(target=self._run, name="event-publisher", daemon=True).start()
            self._pid = os.getpid()
            atexit.register(self.flush)

    def _run(self) -> None:
        pending = self._pending
        while True:
            publish, args, kwargs = pending.get()
            try:
                publish(*args, **kwargs)
            except Exception as exc:  # an event lost is a gap in a monitor, not a lost file
                self.failed += 1
                logger.debug("task event not published: %r", exc)


#: the process-wide publisher
publisher = EventPublisher()
