"""Prometheus metrics of the pipeline, and their exporter: ``python -m pipeline.metrics``.

    python -m pipeline.metrics --port 9808 [--address 127.0.0.1] [--peek]

Two sources, served together on ``/metrics`` (Flower serves its own ``flower_*`` task and worker
metrics on its port; docs/monitoring.md):

- **Queue health**, read from SQS on every scrape (``pipeline.status``): visible / in-flight /
  delayed messages and the age of the oldest message of every queue and DLQ.
- **Counters** incremented by the processes that do the work (worker main processes, their
  prefork pool children, the bridge).  They are aggregated with prometheus_client's
  multiprocess mode: every process of a host gets the same ``PROMETHEUS_MULTIPROC_DIR`` in
  its environment *before it starts* (an empty directory, wiped when the host's processes are
  (re)started); each process writes its counters to files there and this exporter sums them.
  Without that variable the counters stay inside each process and are not exported.

Counters (all ``_total``, unit: messages or records):

=============================================  ==============  ==============================
metric                                         labels          incremented by
=============================================  ==============  ==============================
``filesearch_sqs_messages_deleted_total``      queue, source   ``record_delete`` (acks: the
                                                               transport; events: the bridge)
``filesearch_sqs_delete_failures_total``       queue, source,  ``record_delete(ok=False)``
                                               code
``filesearch_visibility_extensions_total``     -               ``record_visibility``
``filesearch_visibility_extension_failures``   -               ``record_visibility``
``_total``
``filesearch_dead_letters_total``              task, reason    ``record_dead_letter``
=============================================  ==============  ==============================
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pipeline.settings import Settings, get_settings

logger = logging.getLogger(__name__)

#: environment variable of prometheus_client's multiprocess mode
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: default port of the exporter
DEFAULT_PORT = 9808

SQS_MESSAGES_DELETED = Counter(
    "filesearch_sqs_messages_deleted",
    "Messages deleted from an SQS queue after they were handled (messages)",
    ["queue", "source"])
SQS_DELETE_FAILURES = Counter(
    "filesearch_sqs_delete_failures",
    "DeleteMessage calls that failed; the message will be delivered again (messages)",
    ["queue", "source", "code"])
VISIBILITY_EXTENSIONS = Counter(
    "filesearch_visibility_extensions",
    "Visibility timeouts extended by the worker heartbeat, one per message per beat (messages)")
VISIBILITY_EXTENSION_FAILURES = Counter(
    "filesearch_visibility_extension_failures",
    "Visibility extensions that failed or were refused (messages)")
DEAD_LETTERS = Counter(
    "filesearch_dead_letters",
    "Dead-letter records written to the dead-letter queue (records)",
    ["task", "reason"])


def record_delete(queue: str, ok: bool, code: str = "", source: str = "worker") -> None:
    """Count one DeleteMessage outcome for ``queue`` (its physical or logical name)."""
    if ok:
        SQS_MESSAGES_DELETED.labels(queue=queue, source=source).inc()
    else:
        SQS_DELETE_FAILURES.labels(queue=queue, source=source, code=code or "Unknown").inc()


def record_sqs_delete(queue: str, ok: bool, code: str) -> None:
    """``delete_observer`` of ``broker.transport``: acks of the Celery workers."""
    record_delete(queue, ok, code, source="worker")


def record_visibility(extended: int, failures: int = 0) -> None:
    """Count one heartbeat beat: messages extended and extensions that failed."""
    if extended:
        VISIBILITY_EXTENSIONS.inc(extended)
    if failures:
        VISIBILITY_EXTENSION_FAILURES.inc(failures)


def record_dead_letter(task: str, reason: str) -> None:
    """Count one dead-letter record (``reason`` as in the record, e.g. ``object-gone``)."""
    DEAD_LETTERS.labels(task=task, reason=reason).inc()


class QueueHealthCollector(Collector):
    """Depth and oldest-message age of every queue and DLQ, read from SQS at each scrape."""

    def __init__(self, settings: Settings | None = None, *, peek: bool = False) -> None:
        self.settings = settings
        self.peek = peek
        self._lock = threading.Lock()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from pipeline.status import queue_depths

        labels = ["queue", "kind"]
        families = {
            "visible": GaugeMetricFamily("filesearch_sqs_messages_visible",
                                         "Messages waiting in the queue (messages)",
                                         labels=labels),
            "in_flight": GaugeMetricFamily("filesearch_sqs_messages_in_flight",
                                           "Messages received and not yet deleted (messages)",
                                           labels=labels),
            "delayed": GaugeMetricFamily("filesearch_sqs_messages_delayed",
                                         "Messages delayed, e.g. retries in backoff (messages)",
                                         labels=labels),
            "oldest_age_s": GaugeMetricFamily(
                "filesearch_sqs_oldest_message_age_seconds",
                "Age of the oldest message, where measured (see pipeline/status.py) (seconds)",
                labels=labels),
        }
        readable = GaugeMetricFamily("filesearch_sqs_queue_readable",
                                     "1 if the queue's attributes could be read, else 0",
                                     labels=labels)
        with self._lock:
            rows = queue_depths(self.settings or get_settings(), peek=self.peek)
        for row in rows:
            kind = "dlq" if row["queue"].endswith(("-dlq", "dead-letter")) else "work"
            readable.add_metric([row["queue"], kind], 0.0 if "error" in row else 1.0)
            for key, family in families.items():
                value = row.get(key)
                if value is not None:
                    family.add_metric([row["queue"], kind], float(value))
        yield from families.values()
        yield readable


def build_registry(settings: Settings | None = None, *, peek: bool = False) -> CollectorRegistry:
    """Queue health plus the counters of every process sharing ``PROMETHEUS_MULTIPROC_DIR``."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        logger.warning("%s is not set: counters of the workers and the bridge are not "
                       "exported (see docs/monitoring.md)", MULTIPROC_ENV)
    registry.register(QueueHealthCollector(settings, peek=peek))
    return registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.metrics", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("METRICS_PORT",
                                                                       DEFAULT_PORT)))
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--peek", action="store_true",
                        help="peek working queues too (counts as a receive; pipeline/status.py)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = get_settings()
    settings.check_aws_endpoints()
    server: Any = start_http_server(args.port, args.address,
                                    registry=build_registry(settings, peek=args.peek))
    logger.info("metrics on http://%s:%d/metrics", args.address, args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    if isinstance(server, tuple):
        server[0].shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
