"""The dynamic queues this process created: kept alive by a heartbeat tag, removed at exit.

kombu's virtual transports ignore ``auto_delete``, and Flower's SIGTERM handler only calls
``sys.exit(0)`` (its event thread never cancels its consumer).  So every dynamic queue this
process creates is recorded here with its SNS subscriptions and removed:

- when its consumer is cancelled or its channel closed (``broker.transport``);
- at interpreter exit (``atexit``), which also refuses any new dynamic queue from then on, so
  a daemon thread that reconnects during exit cannot leave a fresh queue behind;
- reply queues only once idle for ``REPLY_IDLE_S``: kombu deletes them after every call, but
  the next call from the same thread often has the same oid, and AWS refuses to re-create a
  deleted name for 60 s.

A daemon thread refreshes each queue's heartbeat tag every ``heartbeat_s`` (and deletes idle
reply queues); ``broker.sweep``
removes queues whose heartbeat stopped (crashed owners).  The registry is per process: after a
fork the child starts empty and never deletes its parent's queues.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from broker.naming import REPLY, TAG_HEARTBEAT

logger = logging.getLogger(__name__)

#: seconds a released reply queue is kept for reuse before it is deleted
REPLY_IDLE_S = 90.0
#: seconds between two heartbeat tags (the sweep's staleness limit must be several of these)
HEARTBEAT_S = 60.0
#: SQS error codes meaning "no such queue"
GONE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ("" for anything else)."""
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


@dataclass
class OwnedQueue:
    """One dynamic queue and what must be undone to remove it."""

    name: str
    url: str
    kind: str
    sqs: Any
    #: (SNS client, subscription ARN) of each fanout subscription
    subscriptions: list[tuple[Any, str]] = field(default_factory=list)
    #: monotonic time a reply queue was released (None: in use)
    released_at: float | None = None


class Registry:
    """Queues owned by one process (see the module docstring)."""

    def __init__(self, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.pid = os.getpid()
        self.heartbeat_s = heartbeat_s
        self.closing = False
        self._queues: dict[str, OwnedQueue] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- bookkeeping --------------------------------------------------------------------

    def add(self, queue: OwnedQueue) -> None:
        with self._lock:
            self._queues[queue.name] = queue
            self._start_heartbeat()

    def get(self, name: str) -> OwnedQueue | None:
        with self._lock:
            return self._queues.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._queues)

    def note_subscription(self, name: str, sns: Any, arn: str) -> None:
        with self._lock:
            queue = self._queues.get(name)
            if queue is not None and all(a != arn for _, a in queue.subscriptions):
                queue.subscriptions.append((sns, arn))

    def touch(self, name: str) -> None:
        """A reply queue is in use again: keep it."""
        with self._lock:
            queue = self._queues.get(name)
            if queue is not None:
                queue.released_at = None

    def release(self, name: str) -> None:
        """A reply queue's call is over: delete it once idle, and other idle ones now."""
        with self._lock:
            queue = self._queues.get(name)
            if queue is not None:
                queue.released_at = time.monotonic()
        self.delete_idle()

    # ---- removal ------------------------------------------------------------------------

    def delete(self, name: str) -> bool:
        """Delete a queue and unsubscribe it; False if this process does not own it."""
        with self._lock:
            queue = self._queues.pop(name, None)
        if queue is None or os.getpid() != self.pid:
            return False
        for sns, arn in queue.subscriptions:
            try:
                sns.unsubscribe(SubscriptionArn=arn)
            except Exception as exc:  # the sweep removes subscriptions of missing queues
                logger.warning("could not unsubscribe %s: %r", arn, exc)
        try:
            queue.sqs.delete_queue(QueueUrl=queue.url)
        except Exception as exc:
            if error_code(exc) not in GONE:
                logger.warning("could not delete queue %s: %r", queue.name, exc)
                return False
        logger.info("deleted dynamic queue %s", queue.name)
        return True

    def delete_idle(self, idle_s: float = REPLY_IDLE_S) -> None:
        """Delete reply queues released more than ``idle_s`` seconds ago."""
        now = time.monotonic()
        with self._lock:
            idle = [q.name for q in self._queues.values() if q.kind == REPLY
                    and q.released_at is not None and now - q.released_at >= idle_s]
        for name in idle:
            self.delete(name)

    def delete_all(self) -> None:
        """At exit: refuse new dynamic queues, stop the heartbeat, delete every owned queue."""
        if os.getpid() != self.pid:
            return
        self.closing = True
        self._stop.set()
        for name in self.names():
            self.delete(name)

    # ---- heartbeat ----------------------------------------------------------------------

    def beat(self) -> None:
        """Tag every owned queue with the current time (epoch seconds)."""
        with self._lock:
            queues = list(self._queues.values())
        now = str(int(time.time()))
        for queue in queues:
            try:
                queue.sqs.tag_queue(QueueUrl=queue.url, Tags={TAG_HEARTBEAT: now})
            except Exception as exc:
                logger.warning("could not refresh the heartbeat of %s: %r", queue.name, exc)

    def _start_heartbeat(self) -> None:
        if self._thread is None and self.heartbeat_s > 0:
            self._thread = threading.Thread(target=self._run, name="dynamic-queue-heartbeat",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            self.beat()
            self.delete_idle()


_registry: Registry | None = None
_registry_lock = threading.Lock()


def registry() -> Registry:
    """This process's registry (a forked child gets its own, empty one)."""
    global _registry
    with _registry_lock:
        if _registry is None or _registry.pid != os.getpid():
            _registry = Registry()
            atexit.register(_registry.delete_all)
        return _registry
